// Flags of a project: search, tag filter, every environment's switch side by side. Flipping
// a switch in a critical environment goes through the review (one click plus a confirm: the
// kill switch), with a comment.
import { useState } from 'react'
import type { FormEvent } from 'react'
import { Link, useNavigate, useParams } from 'react-router'
import { api, call, fieldErrors, messageOf, type FlagListItem } from '../api/client'
import { Empty, ErrorState, FieldError, Loading, Switch } from '../components/common'
import { ReviewDialog } from '../components/ReviewDialog'
import { useLive } from '../stores/live'
import { useSession } from '../stores/session'
import { useAsync } from '../stores/useAsync'

interface PendingToggle {
  flag: FlagListItem
  env: string
  enabled: boolean
}

export function FlagsList() {
  const { project = '' } = useParams()
  const { canWrite } = useSession()
  const writable = canWrite(project)
  const [q, setQ] = useState('')
  const [tag, setTag] = useState('')
  const [pending, setPending] = useState<PendingToggle>()
  const [toggleError, setToggleError] = useState<string>()
  const envs = useAsync(
    () => call(api.GET('/api/v1/projects/{project}/environments', { params: { path: { project } } })),
    [project],
  )
  const settings = useAsync(
    () => call(api.GET('/api/v1/projects/{project}', { params: { path: { project } } })),
    [project],
  )
  const flags = useAsync(
    () =>
      call(
        api.GET('/api/v1/projects/{project}/flags', {
          params: { path: { project }, query: { q: q || undefined, tag: tag || undefined, limit: 200 } },
        }),
      ),
    [project, q, tag],
  )
  // Every flag's tags, for the filter (from an unfiltered page so the options stay put).
  const allTags = useAsync(
    () =>
      call(api.GET('/api/v1/projects/{project}/flags', { params: { path: { project }, query: { limit: 200 } } })).then(
        (l) => Array.from(new Set(l.items.flatMap((f) => f.tags))).sort(),
      ),
    [project],
  )
  useLive(project, () => {
    void flags.reload()
    void allTags.reload()
  })

  const flip = async ({ flag, env, enabled }: PendingToggle, comment = '') => {
    setPending(undefined)
    setToggleError(undefined)
    try {
      await call(
        api.POST('/api/v1/projects/{project}/flags/{flag}/environments/{env}/toggle', {
          params: { path: { project, flag: flag.key, env } },
          body: { enabled, comment: comment || `${enabled ? 'Turned on' : 'Turned off'} from the dashboard` },
        }),
      )
      await flags.reload()
    } catch (e) {
      setToggleError(`${flag.key} in ${env}: ${messageOf(e)}`)
    }
  }

  const envList = envs.data ?? []
  return (
    <>
      <div className="page-head">
        <h1>Flags</h1>
        {writable && <CreateFlag project={project} />}
      </div>
      <div className="filters" role="search">
        <label htmlFor="flag-search">Search</label>
        <input id="flag-search" type="search" value={q} placeholder="key, name or description" onChange={(e) => setQ(e.target.value)} />
        <label htmlFor="flag-tag">Tag</label>
        <select id="flag-tag" value={tag} onChange={(e) => setTag(e.target.value)}>
          <option value="">All tags</option>
          {(allTags.data ?? []).map((t) => (
            <option key={t} value={t}>
              {t}
            </option>
          ))}
        </select>
      </div>
      {toggleError && <p className="field-error" role="alert">{toggleError}</p>}
      {flags.error || envs.error ? (
        <ErrorState error={flags.error ?? envs.error} retry={() => { void flags.reload(); void envs.reload() }} />
      ) : !flags.data || !envs.data ? (
        <Loading what="flags" />
      ) : flags.data.items.length === 0 ? (
        <Empty>{q || tag ? 'No flag matches this search.' : 'No flags yet.'}</Empty>
      ) : (
        <div className="table-wrap">
          <table className="flags">
            <caption className="sr-only">Flags and their state per environment</caption>
            <thead>
              <tr>
                <th scope="col">Flag</th>
                <th scope="col">Status</th>
                {envList.map((e) => (
                  <th scope="col" key={e.key}>
                    {e.name || e.key}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {flags.data.items.map((f) => {
                const on = f.environments.filter((e) => e.enabled).length
                return (
                  <tr key={f.key} data-flag={f.key}>
                    <th scope="row">
                      <Link to={`/p/${project}/flags/${f.key}`}>{f.name || f.key}</Link>
                      <div className="sub">
                        <code>{f.key}</code> · {f.kind}
                        {f.tags.map((t) => (
                          <span key={t} className="tag">
                            {t}
                          </span>
                        ))}
                      </div>
                    </th>
                    <td data-label="Status">
                      <span className={`badge ${on === 0 ? 'off' : on === f.environments.length ? 'on' : 'partial'}`}>
                        {f.archived ? 'archived' : on === 0 ? 'off everywhere' : on === f.environments.length ? 'on everywhere' : `on in ${on}/${f.environments.length}`}
                      </span>
                    </td>
                    {envList.map((env) => {
                      const state = f.environments.find((e) => e.environment === env.key)
                      const enabled = !!state?.enabled
                      return (
                        <td key={env.key} data-label={env.name || env.key}>
                          <Switch
                            checked={enabled}
                            label={`${f.key} in ${env.name || env.key}`}
                            disabled={!writable}
                            onChange={(next) => {
                              const change = { flag: f, env: env.key, enabled: next }
                              if (env.critical) setPending(change)
                              else void flip(change)
                            }}
                          />
                        </td>
                      )
                    })}
                  </tr>
                )
              })}
            </tbody>
          </table>
        </div>
      )}
      {pending && (
        <ReviewDialog
          title={`Turn ${pending.enabled ? 'on' : 'off'} ${pending.flag.key} in ${pending.env}?`}
          confirmLabel={pending.enabled ? 'Turn on' : 'Turn off'}
          danger={!pending.enabled}
          changes={[{ path: `${pending.env}.enabled`, before: !pending.enabled, after: pending.enabled }]}
          commentRequired={!!settings.data?.require_critical_comment}
          onCancel={() => setPending(undefined)}
          onConfirm={(comment) => void flip(pending, comment)}
        >
          <p>
            <strong>{pending.env}</strong> is a critical environment: this changes what every user there gets, immediately.
          </p>
        </ReviewDialog>
      )}
    </>
  )
}

function CreateFlag({ project }: { project: string }) {
  const navigate = useNavigate()
  const [open, setOpen] = useState(false)
  const [key, setKey] = useState('')
  const [name, setName] = useState('')
  const [kind, setKind] = useState('boolean')
  const [tags, setTags] = useState('')
  const [errors, setErrors] = useState<Record<string, string>>({})
  const [error, setError] = useState<string>()
  if (!open)
    return (
      <button type="button" className="primary" onClick={() => setOpen(true)}>
        New flag
      </button>
    )
  const submit = async (e: FormEvent) => {
    e.preventDefault()
    setErrors({})
    setError(undefined)
    const variants =
      kind === 'boolean'
        ? undefined
        : kind === 'string'
          ? [{ key: 'a', value: 'a' }, { key: 'b', value: 'b' }]
          : kind === 'number'
            ? [{ key: 'low', value: 0 }, { key: 'high', value: 1 }]
            : [{ key: 'empty', value: {} }]
    try {
      await call(
        api.POST('/api/v1/projects/{project}/flags', {
          params: { path: { project } },
          body: {
            key,
            name,
            kind,
            tags: tags.split(',').map((t) => t.trim()).filter(Boolean),
            ...(variants ? { variants: variants as never } : {}),
          },
        }),
      )
      navigate(`/p/${project}/flags/${key}`)
    } catch (err) {
      const fields = fieldErrors(err)
      setErrors(fields)
      if (Object.keys(fields).length === 0) setError(messageOf(err))
    }
  }
  return (
    <form className="create" onSubmit={submit} aria-label="New flag">
      <label htmlFor="new-key">Key</label>
      <input id="new-key" required value={key} onChange={(e) => setKey(e.target.value)} aria-invalid={!!errors.key} />
      <FieldError message={errors.key} />
      <label htmlFor="new-name">Name</label>
      <input id="new-name" value={name} onChange={(e) => setName(e.target.value)} />
      <FieldError message={errors.name} />
      <label htmlFor="new-kind">Kind</label>
      <select id="new-kind" value={kind} onChange={(e) => setKind(e.target.value)}>
        <option value="boolean">boolean</option>
        <option value="string">string</option>
        <option value="number">number</option>
        <option value="json">json</option>
      </select>
      <label htmlFor="new-tags">Tags</label>
      <input id="new-tags" value={tags} placeholder="web, checkout" onChange={(e) => setTags(e.target.value)} />
      <FieldError message={errors.tags ?? Object.entries(errors).find(([k]) => k.startsWith('tags'))?.[1]} />
      {error && <p className="field-error" role="alert">{error}</p>}
      <button type="submit" className="primary">Create flag</button>
      <button type="button" onClick={() => setOpen(false)}>Cancel</button>
    </form>
  )
}
