// Flags of a project: search, tag and lifecycle filters, live or archived (with restore), a
// "Potentially stale" badge saying why, every environment's switch side by side, a page at
// a time with the total always shown. Flipping
// a switch in a critical environment goes through the review (one click plus a confirm: the
// kill switch), with a comment.
import { useState } from 'react'
import type { FormEvent, ReactNode } from 'react'
import { Link, useNavigate, useParams } from 'react-router'
import { api, call, fieldErrors, messageOf, type Environment, type FlagListItem } from '../api/client'
import { EMPTY_QUERY, allFlags, countText, listParams, pageCount, type FlagQuery, type Page } from '../api/flagList'
import {
  FLAG_TYPES,
  LIFECYCLE_FILTERS,
  lifetimeText,
  staleTitle,
  typeLabel,
  type FlagType,
  type LifecycleFilter,
} from '../api/lifecycle'
import { keyFromName, planVariantEdit, starterRows, type FlagKind, type VariantRow } from '../api/variants'
import { Empty, ErrorState, Field, Loading, Switch } from '../components/common'
import { VariantTable } from '../components/VariantTable'
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
  const [query, setQuery] = useState<FlagQuery>(EMPTY_QUERY)
  const [pending, setPending] = useState<PendingToggle>()
  const [restoring, setRestoring] = useState<FlagListItem>()
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
          params: { path: { project }, query: listParams(query) },
        }),
      ),
    [project, query],
  )
  // Every flag's tags, for the filter (from every page, so the options stay put).
  const allTags = useAsync(
    () => allFlags(project).then((items) => Array.from(new Set(items.flatMap((f) => f.tags))).sort()),
    [project],
  )
  useLive(project, () => {
    void flags.reload()
    void allTags.reload()
  })
  const change = (patch: Partial<FlagQuery>) => setQuery((q) => ({ ...q, offset: 0, ...patch }))

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

  const restore = async (flag: FlagListItem, comment: string) => {
    setRestoring(undefined)
    setToggleError(undefined)
    try {
      await call(
        api.POST('/api/v1/projects/{project}/flags/{flag}/unarchive', {
          params: { path: { project, flag: flag.key } },
          body: { version: flag.version, comment: comment || 'Restored from the dashboard' },
        }),
      )
      await flags.reload()
    } catch (e) {
      setToggleError(`${flag.key}: ${messageOf(e)}`)
    }
  }

  const envList = envs.data ?? []
  const critical = envList.filter((e) => e.critical).map((e) => e.name || e.key)
  const columns = flagColumns({
    project,
    envs: envList,
    writable,
    onToggle: (change) => (envList.find((e) => e.key === change.env)?.critical ? setPending(change) : void flip(change)),
    onRestore: setRestoring,
  })
  return (
    <>
      <div className="page-head">
        <h1>Flags</h1>
        {writable && <CreateFlag project={project} />}
      </div>
      <FlagFilters query={query} tags={allTags.data ?? []} onChange={change} />
      {toggleError && <p className="field-error" role="alert">{toggleError}</p>}
      {flags.error || envs.error ? (
        <ErrorState error={flags.error ?? envs.error} retry={() => { void flags.reload(); void envs.reload() }} />
      ) : !flags.data || !envs.data ? (
        <Loading what="flags" />
      ) : flags.data.items.length === 0 && query.offset === 0 ? (
        query.archived ? (
          <Empty>No archived flags.</Empty>
        ) : query.lifecycle === 'stale' && !query.q && !query.tag ? (
          <Empty>No potentially stale flags.</Empty>
        ) : query.q || query.tag || query.lifecycle !== 'all' ? (
          <Empty>No flag matches this search.</Empty>
        ) : (
          <Empty>
            <p>No flags yet.</p>
            <ol className="first-steps" aria-label="Get started">
              <li>{writable ? 'Create your first flag with “New flag”.' : 'Ask a writer to create the first flag.'}</li>
              <li>
                Then <Link to={`/p/${encodeURIComponent(project)}/environments`}>connect an app</Link>: create an SDK key for
                an environment and copy the snippet for your language.
              </li>
            </ol>
          </Empty>
        )
      ) : (
        <>
          <ListCount page={flags.data} archived={query.archived} />
          <div className="table-wrap">
            <table className="flags">
              <caption className="sr-only">Flags and their state per environment</caption>
              <thead>
                <tr>
                  {columns.map((c) => (
                    <th scope="col" key={c.id}>
                      {c.title}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {flags.data.items.map((f) => (
                  <tr key={f.key} data-flag={f.key}>
                    {columns.map((c) =>
                      c.id === 'flag' ? (
                        <th scope="row" key={c.id}>
                          {c.cell(f)}
                        </th>
                      ) : (
                        <td key={c.id} data-label={c.title}>
                          {c.cell(f)}
                        </td>
                      ),
                    )}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <Pager page={flags.data} onOffset={(offset) => setQuery((q) => ({ ...q, offset }))} />
        </>
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
      {restoring && (
        <ReviewDialog
          title={`Restore ${restoring.key}?`}
          confirmLabel="Restore"
          changes={[{ path: 'archived', before: true, after: false }]}
          commentRequired={!!settings.data?.require_critical_comment && critical.length > 0}
          onCancel={() => setRestoring(undefined)}
          onConfirm={(comment) => void restore(restoring, comment)}
        >
          <p>
            The flag comes back to the list and to what SDKs receive, as it was configured.
            {critical.length > 0 && ` This changes ${critical.join(', ')} (critical).`}
          </p>
        </ReviewDialog>
      )}
    </>
  )
}

/** The list's filters: text, tag, lifecycle, live or archived. New filters go here and in
 * `FlagQuery`. */
function FlagFilters({
  query,
  tags,
  onChange,
}: {
  query: FlagQuery
  tags: string[]
  onChange: (patch: Partial<FlagQuery>) => void
}) {
  return (
    <div className="filters" role="search">
      <label htmlFor="flag-search">Search</label>
      <input
        id="flag-search"
        type="search"
        value={query.q}
        placeholder="key, name or description"
        onChange={(e) => onChange({ q: e.target.value })}
      />
      <label htmlFor="flag-tag">Tag</label>
      <select id="flag-tag" value={query.tag} onChange={(e) => onChange({ tag: e.target.value })}>
        <option value="">All tags</option>
        {tags.map((t) => (
          <option key={t} value={t}>
            {t}
          </option>
        ))}
      </select>
      <label htmlFor="flag-lifecycle">Lifecycle</label>
      <select
        id="flag-lifecycle"
        value={query.lifecycle}
        onChange={(e) => onChange({ lifecycle: e.target.value as LifecycleFilter })}
      >
        {LIFECYCLE_FILTERS.map((f) => (
          <option key={f.value} value={f.value}>
            {f.label}
          </option>
        ))}
      </select>
      <label className="check">
        <input type="checkbox" checked={query.archived} onChange={(e) => onChange({ archived: e.target.checked })} />
        Show archived flags
      </label>
    </div>
  )
}

/** "Flags 101–200 of 2,000": the list always says how many there are. */
function ListCount({ page, archived }: { page: Page; archived: boolean }) {
  return (
    <p className="list-count" role="status" data-testid="flag-count">
      {countText(page, archived ? 'archived flag' : 'flag')}
    </p>
  )
}

function Pager({ page, onOffset }: { page: Page; onOffset: (offset: number) => void }) {
  const pages = pageCount(page)
  if (pages <= 1) return null
  const current = Math.floor(page.offset / page.limit) + 1
  return (
    <nav className="pager" aria-label="Pages of flags">
      <button type="button" disabled={page.offset === 0} onClick={() => onOffset(0)}>
        First
      </button>
      <button type="button" disabled={page.offset === 0} onClick={() => onOffset(Math.max(0, page.offset - page.limit))}>
        Previous
      </button>
      <span>
        Page {current} of {pages}
      </span>
      <button
        type="button"
        disabled={page.offset + page.limit >= page.total}
        onClick={() => onOffset(page.offset + page.limit)}
      >
        Next
      </button>
      <button
        type="button"
        disabled={page.offset + page.limit >= page.total}
        onClick={() => onOffset((pages - 1) * page.limit)}
      >
        Last
      </button>
    </nav>
  )
}

/** One column of the flags table: the list's rows are made of these, so a new column is one
 * more entry. */
interface FlagColumn {
  id: string
  title: string
  cell: (f: FlagListItem) => ReactNode
}

function flagColumns({
  project,
  envs,
  writable,
  onToggle,
  onRestore,
}: {
  project: string
  envs: Environment[]
  writable: boolean
  onToggle: (change: PendingToggle) => void
  onRestore: (f: FlagListItem) => void
}): FlagColumn[] {
  return [
    {
      id: 'flag',
      title: 'Flag',
      cell: (f) => (
        <>
          <Link to={`/p/${project}/flags/${f.key}`}>{f.name || f.key}</Link>
          {f.lifecycle.stale && (
            <>
              {' '}
              <span className="badge stale" title={staleTitle(f.lifecycle)} data-testid="stale-badge">
                Potentially stale
              </span>
            </>
          )}
          <div className="sub">
            <code>{f.key}</code> · {f.kind} · {typeLabel(f.type)}
            {f.permanent && ' · permanent'}
            {f.tags.map((t) => (
              <span key={t} className="tag">
                {t}
              </span>
            ))}
          </div>
        </>
      ),
    },
    {
      id: 'status',
      title: 'Status',
      cell: (f) => {
        if (f.archived)
          return (
            <>
              <span className="badge off">archived</span>{' '}
              {writable && (
                <button type="button" onClick={() => onRestore(f)}>
                  Restore {f.key}
                </button>
              )}
            </>
          )
        const on = f.environments.filter((e) => e.enabled).length
        return (
          <span className={`badge ${on === 0 ? 'off' : on === f.environments.length ? 'on' : 'partial'}`}>
            {on === 0 ? 'off everywhere' : on === f.environments.length ? 'on everywhere' : `on in ${on}/${f.environments.length}`}
          </span>
        )
      },
    },
    ...envs.map(
      (env): FlagColumn => ({
        id: `env:${env.key}`,
        title: env.name || env.key,
        cell: (f) => {
          const enabled = !!f.environments.find((e) => e.environment === env.key)?.enabled
          return (
            <Switch
              checked={enabled}
              label={`${f.key} in ${env.name || env.key}`}
              disabled={!writable || f.archived}
              onChange={(next) => onToggle({ flag: f, env: env.key, enabled: next })}
            />
          )
        },
      }),
    ),
  ]
}

function CreateFlag({ project }: { project: string }) {
  const navigate = useNavigate()
  const settings = useAsync(
    () => call(api.GET('/api/v1/projects/{project}/lifecycle', { params: { path: { project } } })),
    [project],
  )
  const lifetimes = settings.data?.lifetimes
  const [open, setOpen] = useState(false)
  const [name, setName] = useState('')
  // The key follows the name until someone edits it.
  const [keyEdited, setKeyEdited] = useState<string>()
  const [description, setDescription] = useState('')
  const [kind, setKind] = useState<FlagKind>('boolean')
  const [type, setType] = useState<FlagType>('release')
  const [permanent, setPermanent] = useState(false)
  const [rows, setRows] = useState<VariantRow[]>([])
  const [tags, setTags] = useState('')
  const [errors, setErrors] = useState<Record<string, string>>({})
  const [error, setError] = useState<string>()
  if (!open)
    return (
      <button type="button" className="primary" onClick={() => setOpen(true)}>
        New flag
      </button>
    )
  const key = keyEdited ?? keyFromName(name)
  const submit = async (e: FormEvent) => {
    e.preventDefault()
    setErrors({})
    setError(undefined)
    const plan = planVariantEdit(kind, [], rows)
    if (Object.keys(plan.errors).length) return setErrors(plan.errors)
    try {
      await call(
        api.POST('/api/v1/projects/{project}/flags', {
          params: { path: { project } },
          body: {
            key,
            name,
            description,
            kind,
            type,
            permanent,
            tags: tags.split(',').map((t) => t.trim()).filter(Boolean),
            ...(kind !== 'boolean' ? { variants: (plan.variants ?? []) as never } : {}),
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
      <Field label="Name" htmlFor="new-name" error={errors.name}>
        <input id="new-name" required value={name} onChange={(e) => setName(e.target.value)} aria-invalid={!!errors.name} />
      </Field>
      <Field label="Key" htmlFor="new-key" error={errors.key}>
        <input
          id="new-key"
          required
          value={key}
          onChange={(e) => setKeyEdited(e.target.value)}
          aria-invalid={!!errors.key}
          aria-describedby="new-key-hint"
        />
        <span id="new-key-hint" className="hint">
          What code asks for; derived from the name until you edit it.
        </span>
      </Field>
      <Field label="Description" htmlFor="new-description" error={errors.description}>
        <textarea id="new-description" rows={2} value={description} onChange={(e) => setDescription(e.target.value)} />
      </Field>
      <Field label="Kind" htmlFor="new-kind">
        <select
          id="new-kind"
          value={kind}
          onChange={(e) => {
            const next = e.target.value as FlagKind
            setKind(next)
            setRows(starterRows(next))
          }}
        >
          <option value="boolean">boolean (on / off)</option>
          <option value="string">string</option>
          <option value="number">number</option>
          <option value="json">json</option>
        </select>
      </Field>
      <Field label="Type" htmlFor="new-type" error={errors.type}>
        <select id="new-type" value={type} onChange={(e) => setType(e.target.value as FlagType)} aria-describedby="new-type-hint">
          {FLAG_TYPES.map((t) => (
            <option key={t.value} value={t.value}>
              {t.label}
            </option>
          ))}
        </select>
        <span id="new-type-hint" className="hint">
          {FLAG_TYPES.find((t) => t.value === type)?.hint}; expected to live{' '}
          {lifetimes ? lifetimeText(lifetimes[type]) : '…'}, then listed as potentially stale.
        </span>
      </Field>
      <Field label="Permanent" htmlFor="new-permanent" error={errors.permanent}>
        <label className="check">
          <input id="new-permanent" type="checkbox" checked={permanent} onChange={(e) => setPermanent(e.target.checked)} />{' '}
          Meant to stay: never listed as potentially stale
        </label>
      </Field>
      <Field label="Tags" htmlFor="new-tags" error={errors.tags ?? Object.entries(errors).find(([k]) => k.startsWith('tags'))?.[1]}>
        <input id="new-tags" value={tags} placeholder="web, checkout" onChange={(e) => setTags(e.target.value)} />
      </Field>
      {kind !== 'boolean' && (
        <fieldset className="wide">
          <legend>Variants</legend>
          <VariantTable kind={kind} rows={rows} onChange={setRows} errors={errors} />
        </fieldset>
      )}
      <div className="buttons">
        <button type="submit" className="primary">Create flag</button>
        <button type="button" onClick={() => setOpen(false)}>Cancel</button>
        {error && <p className="field-error" role="alert">{error}</p>}
      </div>
    </form>
  )
}
