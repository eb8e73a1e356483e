// One flag: variants, per-environment configuration (switch, targets, rules, rollouts,
// default and off variants, prerequisites), and its history with revert. Saving sends the
// version it edited; on a conflict the page shows what changed and offers a reload. In a
// critical environment every change (toggle, save, revert, archive) goes through one
// review dialog: the diff and a comment.
import { useEffect, useState } from 'react'
import { Link, useParams } from 'react-router'
import {
  ApiFailure,
  api,
  call,
  errorsUnder,
  fieldErrors,
  messageOf,
  type Environment,
  type FlagView,
} from '../api/client'
import { diffJson } from '../api/diff'
import { normalizeConfig, rolloutProblem, type FlagConfig, type Json, type Serve, type Variant } from '../api/model'
import { ConfigEditor } from '../components/ConfigEditor'
import { ConfirmDialog, ErrorState, FieldError, Loading, Switch } from '../components/common'
import { DiffView } from '../components/DiffView'
import { ReviewDialog } from '../components/ReviewDialog'
import { History } from './FlagHistory'
import { useLive } from '../stores/live'
import { useSession } from '../stores/session'
import { useAsync } from '../stores/useAsync'

interface Conflict {
  mine: FlagView
  theirs: FlagView
}

function serves(s: Serve): string[] {
  return 'rollout' in s ? [rolloutProblem(s.rollout.weights) ?? ''] : []
}

/** Client-side check before sending: rollouts that do not sum to 100 are not sent. */
function localProblems(c: FlagConfig): Record<string, string> {
  const out: Record<string, string> = {}
  c.rules.forEach((r, i) => {
    const p = serves(r.serve)[0]
    if (p) out[`rules[${i}].serve.rollout.weights`] = p
  })
  const p = serves(c.default_serve)[0]
  if (p) out['default_serve.rollout.weights'] = p
  return out
}

export function FlagPage() {
  const { project = '', flag = '' } = useParams()
  const { canWrite } = useSession()
  const writable = canWrite(project)
  const view = useAsync(
    () => call(api.GET('/api/v1/projects/{project}/flags/{flag}', { params: { path: { project, flag } } })),
    [project, flag],
  )
  const envs = useAsync(
    () => call(api.GET('/api/v1/projects/{project}/environments', { params: { path: { project } } })),
    [project],
  )
  const settings = useAsync(
    () => call(api.GET('/api/v1/projects/{project}', { params: { path: { project } } })),
    [project],
  )
  const segments = useAsync(
    () => call(api.GET('/api/v1/projects/{project}/segments', { params: { path: { project } } })),
    [project],
  )
  const others = useAsync(
    () =>
      call(api.GET('/api/v1/projects/{project}/flags', { params: { path: { project }, query: { limit: 200 } } })).then(
        (l) => l.items.map((f) => f.key).filter((k) => k !== flag),
      ),
    [project, flag],
  )
  const history = useAsync(
    () =>
      call(
        api.GET('/api/v1/projects/{project}/flags/{flag}/versions', {
          params: { path: { project, flag }, query: { limit: 20 } },
        }),
      ),
    [project, flag],
  )
  const [envKey, setEnvKey] = useState<string>()
  const [draft, setDraft] = useState<FlagConfig>()
  // The flag as it was when editing started: its version is sent, and a conflict is shown
  // as the difference between it and what is stored now.
  const [draftBase, setDraftBase] = useState<FlagView>()
  const [errors, setErrors] = useState<Record<string, string>>({})
  const [message, setMessage] = useState<string>()
  const [conflict, setConflict] = useState<Conflict>()
  const [pendingToggle, setPendingToggle] = useState<boolean>()
  const [reviewSave, setReviewSave] = useState(false)
  const [changedUnderneath, setChangedUnderneath] = useState(false)

  useLive(project, () => {
    void history.reload()
    if (draft) setChangedUnderneath(true)
    void view.reload()
  })

  const envList = envs.data ?? []
  // A critical environment opens first: it is the one people come to change.
  const activeEnv = envKey ?? envList.find((e) => e.critical)?.key ?? envList[0]?.key
  useEffect(() => {
    setDraft(undefined)
    setErrors({})
    setConflict(undefined)
    setChangedUnderneath(false)
  }, [activeEnv, flag])

  if (view.error) return <ErrorState error={view.error} retry={view.reload} />
  if (!view.data || !envs.data) return <Loading what="flag" />
  const f = view.data
  const variants = f.variants as unknown as Variant[]
  const env = envList.find((e) => e.key === activeEnv)
  const stored = normalizeConfig((f.environments as Record<string, unknown>)[activeEnv ?? ''])
  const config = draft ?? stored
  const dirty = draft !== undefined
  const requireComment = !!settings.data?.require_critical_comment

  const edit = (c: FlagConfig) => {
    if (!draft) setDraftBase(f)
    setDraft(c)
    setMessage(undefined)
  }

  /** Checks the draft, then saves it, through the review in a critical environment. */
  const requestSave = () => {
    if (!activeEnv || !draft) return
    const local = localProblems(draft)
    if (Object.keys(local).length > 0) {
      setErrors(local)
      setMessage('Fix the highlighted fields before saving.')
      return
    }
    if (env?.critical) setReviewSave(true)
    else void save('')
  }

  const save = async (comment: string) => {
    setReviewSave(false)
    if (!activeEnv || !draft) return
    setErrors({})
    setMessage(undefined)
    try {
      const saved = await call(
        api.PUT('/api/v1/projects/{project}/flags/{flag}/environments/{env}', {
          params: { path: { project, flag, env: activeEnv } },
          body: { config: draft as never, version: draftBase?.version ?? f.version, comment: comment || 'Edited in the dashboard' },
        }),
      )
      view.setData(saved)
      setDraft(undefined)
      setChangedUnderneath(false)
      setMessage(`Saved as version ${saved.version}.`)
      void history.reload()
    } catch (e) {
      if (e instanceof ApiFailure && e.status === 409 && e.body?.current) {
        const theirs = e.body.current as FlagView
        const mine = { ...f, environments: { ...(f.environments as object), [activeEnv]: draft } } as FlagView
        setConflict({ mine, theirs })
        return
      }
      const fields = fieldErrors(e)
      setErrors(errorsUnder(fields, 'config'))
      setMessage(messageOf(e))
    }
  }

  const toggle = async (enabled: boolean, comment = '') => {
    setPendingToggle(undefined)
    if (!activeEnv) return
    try {
      const saved = await call(
        api.POST('/api/v1/projects/{project}/flags/{flag}/environments/{env}/toggle', {
          params: { path: { project, flag, env: activeEnv } },
          body: { enabled, comment: comment || `${enabled ? 'Turned on' : 'Turned off'} from the dashboard` },
        }),
      )
      view.setData(saved)
      if (draft) setDraft({ ...draft, enabled })
      void history.reload()
    } catch (e) {
      setMessage(messageOf(e))
    }
  }

  return (
    <>
      <nav aria-label="Breadcrumb" className="crumbs">
        <Link to={`/p/${project}/flags`}>Flags</Link> / <span>{f.key}</span>
      </nav>
      <div className="page-head">
        <h1>
          {f.name || f.key} {f.archived && <span className="badge off">archived</span>}
        </h1>
        <span className="sub">
          <code>{f.key}</code> · {f.kind} · version <span data-testid="flag-version">{f.version}</span>
        </span>
      </div>
      {f.description && <p>{f.description}</p>}
      {writable && (
        <ArchiveButton
          project={project}
          flag={f}
          envs={envList}
          requireComment={requireComment}
          onDone={(v) => view.setData(v)}
        />
      )}

      <Variants
        flag={f}
        project={project}
        writable={writable}
        critical={envList.filter((e) => e.critical).map((e) => e.name || e.key)}
        requireComment={requireComment}
        onSaved={(v) => view.setData(v)}
      />

      <section className="envs" aria-label="Environments">
        <div role="tablist" aria-label="Environment" className="tabs">
          {envList.map((e) => {
            const on = !!(f.environments as Record<string, { enabled?: boolean }>)[e.key]?.enabled
            return (
              <button
                key={e.key}
                role="tab"
                type="button"
                aria-selected={e.key === activeEnv}
                className={e.key === activeEnv ? 'active' : ''}
                onClick={() => setEnvKey(e.key)}
              >
                {e.name || e.key}
                {e.critical && <span className="badge critical">critical</span>}{' '}
                <span className={`dot ${on ? 'on' : 'off'}`} aria-label={on ? 'on' : 'off'} />
              </button>
            )
          })}
        </div>
        {env && (
          <div role="tabpanel" aria-label={`${env.name || env.key} configuration`} className="panel">
            <div className="row">
              <Switch
                checked={stored.enabled}
                label={`${f.key} in ${env.name || env.key}`}
                disabled={!writable}
                onChange={(next) => (env.critical ? setPendingToggle(next) : void toggle(next))}
              />
              <span>{stored.enabled ? 'Serving the rules below' : `Off: everyone gets ${stored.off_variant}`}</span>
            </div>
            {changedUnderneath && dirty && (
              <p className="notice" role="status">
                Someone else changed this flag while you were editing. Saving will report a conflict.
              </p>
            )}
            <ConfigEditor
              config={config}
              variants={variants}
              onChange={edit}
              errors={errors}
              segments={segments.data ?? []}
              otherFlags={others.data ?? []}
              readOnly={!writable}
            />
            {writable && (
              <div className="actions save">
                <button type="button" className="primary" disabled={!dirty} onClick={requestSave}>
                  Save {env.name || env.key}
                </button>
                <button
                  type="button"
                  disabled={!dirty}
                  onClick={() => {
                    setDraft(undefined)
                    setErrors({})
                    setMessage(undefined)
                  }}
                >
                  Discard changes
                </button>
                {message && (
                  <span role="status" className={Object.keys(errors).length ? 'field-error' : 'ok'}>
                    {message}
                  </span>
                )}
                <FieldError message={errors['']} />
              </div>
            )}
          </div>
        )}
      </section>

      <History
        project={project}
        flag={f}
        envs={envList}
        activeEnv={activeEnv}
        versions={history.data}
        error={history.error}
        writable={writable}
        onReverted={(v) => {
          view.setData(v)
          setDraft(undefined)
          void history.reload()
        }}
      />

      {pendingToggle !== undefined && env && (
        <ReviewDialog
          title={`Turn ${pendingToggle ? 'on' : 'off'} ${f.key} in ${env.name || env.key}?`}
          confirmLabel={pendingToggle ? 'Turn on' : 'Turn off'}
          danger={!pendingToggle}
          changes={[{ path: 'enabled', before: stored.enabled, after: pendingToggle }]}
          commentRequired={requireComment}
          onCancel={() => setPendingToggle(undefined)}
          onConfirm={(comment) => void toggle(pendingToggle, comment)}
        >
          <p>
            {env.name || env.key} is a critical environment: this changes what every user there gets, immediately.
          </p>
        </ReviewDialog>
      )}
      {reviewSave && env && draft && (
        <ReviewDialog
          title={`Save ${f.key} in ${env.name || env.key}?`}
          confirmLabel="Save"
          changes={diffJson(stored, draft)}
          commentRequired={requireComment}
          onCancel={() => setReviewSave(false)}
          onConfirm={(comment) => void save(comment)}
        >
          <p>{env.name || env.key} is a critical environment: review the change before it applies.</p>
        </ReviewDialog>
      )}
      {conflict && activeEnv && (
        <ConfirmDialog
          title="Someone else changed this flag"
          confirmLabel="Reload their version"
          onCancel={() => setConflict(undefined)}
          onConfirm={() => {
            view.setData(conflict.theirs)
            setDraft(undefined)
            setConflict(undefined)
            setErrors({})
            setMessage('Reloaded the current version; your edits were discarded.')
          }}
        >
          <p>
            You edited version {draftBase?.version}; it is now at version {conflict.theirs.version}. Their changes since you
            started:
          </p>
          <DiffView changes={diffJson(draftBase ?? f, conflict.theirs).filter((c) => !['updated_at', 'version'].includes(c.path))} />
          <p>Your unsaved edits compared with their version:</p>
          <DiffView
            before={(conflict.theirs.environments as Record<string, Json>)[activeEnv]}
            after={(conflict.mine.environments as Record<string, Json>)[activeEnv]}
          />
        </ConfirmDialog>
      )}
    </>
  )
}

function Variants({
  flag,
  project,
  writable,
  critical,
  requireComment,
  onSaved,
}: {
  flag: FlagView
  project: string
  writable: boolean
  /** Names of the critical environments: variants change what each of them serves. */
  critical: string[]
  requireComment: boolean
  onSaved: (v: FlagView) => void
}) {
  const [draft, setDraft] = useState<{ key: string; name: string; value: string }[]>()
  const [review, setReview] = useState<Variant[]>()
  const [errors, setErrors] = useState<Record<string, string>>({})
  const [message, setMessage] = useState<string>()
  const variants = flag.variants as unknown as Variant[]
  const rows = draft ?? variants.map((v) => ({ key: v.key, name: v.name ?? '', value: JSON.stringify(v.value) }))
  const set = (i: number, patch: Partial<(typeof rows)[number]>) => {
    const next = rows.slice()
    next[i] = { ...next[i], ...patch }
    setDraft(next)
  }
  const save = () => {
    const parsed: Variant[] = []
    const local: Record<string, string> = {}
    rows.forEach((r, i) => {
      try {
        parsed.push({ key: r.key, value: JSON.parse(r.value) as Json, ...(r.name ? { name: r.name } : {}) })
      } catch {
        local[`variants[${i}].value`] = 'Not valid JSON (strings need quotes: "blue").'
      }
    })
    if (Object.keys(local).length) return setErrors(local)
    if (critical.length > 0) setReview(parsed)
    else void send(parsed, '')
  }
  const send = async (parsed: Variant[], comment: string) => {
    setReview(undefined)
    try {
      const saved = await call(
        api.PATCH('/api/v1/projects/{project}/flags/{flag}', {
          params: { path: { project, flag: flag.key } },
          body: { variants: parsed as never, version: flag.version, comment },
        }),
      )
      onSaved(saved)
      setDraft(undefined)
      setErrors({})
      setMessage('Variants saved.')
    } catch (e) {
      setErrors(fieldErrors(e))
      setMessage(messageOf(e))
    }
  }
  return (
    <section aria-labelledby="variants-h" className="variants">
      <h2 id="variants-h">Variants</h2>
      <table>
        <thead>
          <tr>
            <th scope="col">Key</th>
            <th scope="col">Name</th>
            <th scope="col">Value (JSON)</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r, i) => (
            <tr key={i}>
              <td>
                <label className="sr-only" htmlFor={`vk${i}`}>Variant {i + 1} key</label>
                <input id={`vk${i}`} value={r.key} disabled={!writable} onChange={(e) => set(i, { key: e.target.value })} />
                <FieldError message={errors[`variants[${i}].key`]} />
              </td>
              <td>
                <label className="sr-only" htmlFor={`vn${i}`}>Variant {i + 1} name</label>
                <input id={`vn${i}`} value={r.name} disabled={!writable} onChange={(e) => set(i, { name: e.target.value })} />
              </td>
              <td>
                <label className="sr-only" htmlFor={`vv${i}`}>Variant {i + 1} value</label>
                <input id={`vv${i}`} value={r.value} disabled={!writable} onChange={(e) => set(i, { value: e.target.value })} />
                <FieldError message={errors[`variants[${i}].value`] ?? errors[`variants[${i}]`]} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <FieldError message={errors['variants']} />
      {writable && flag.kind !== 'boolean' && (
        <button type="button" onClick={() => setDraft([...rows, { key: `v${rows.length + 1}`, name: '', value: 'null' }])}>
          Add variant
        </button>
      )}
      {writable && draft && (
        <>
          <button type="button" className="primary" onClick={() => void save()}>
            Save variants
          </button>
          <button type="button" onClick={() => setDraft(undefined)}>
            Discard
          </button>
        </>
      )}
      {message && <span role="status"> {message}</span>}
      {review && (
        <ReviewDialog
          title={`Save the variants of ${flag.key}?`}
          confirmLabel="Save variants"
          changes={diffJson(variants, review)}
          commentRequired={requireComment}
          onCancel={() => setReview(undefined)}
          onConfirm={(comment) => void send(review, comment)}
        >
          <p>Variants change what every environment serves, {critical.join(', ')} (critical) included.</p>
        </ReviewDialog>
      )}
    </section>
  )
}

/** Archive (hide from lists; SDKs stop receiving it) or bring back a flag, after a review. */
function ArchiveButton({
  project,
  flag,
  envs,
  requireComment,
  onDone,
}: {
  project: string
  flag: FlagView
  envs: Environment[]
  requireComment: boolean
  onDone: (v: FlagView) => void
}) {
  const [confirm, setConfirm] = useState(false)
  const [error, setError] = useState<string>()
  const critical = envs.filter((e) => e.critical).map((e) => e.name || e.key)
  const run = async (comment: string) => {
    setConfirm(false)
    try {
      const path = { params: { path: { project, flag: flag.key } }, body: { version: flag.version, comment } }
      const v = flag.archived
        ? await call(api.POST('/api/v1/projects/{project}/flags/{flag}/unarchive', path))
        : await call(api.POST('/api/v1/projects/{project}/flags/{flag}/archive', path))
      onDone(v)
    } catch (e) {
      setError(messageOf(e))
    }
  }
  return (
    <p>
      <button type="button" className={flag.archived ? '' : 'danger'} onClick={() => setConfirm(true)}>
        {flag.archived ? 'Restore flag' : 'Archive flag'}
      </button>
      {error && <span className="field-error" role="alert">{error}</span>}
      {confirm && (
        <ReviewDialog
          title={`${flag.archived ? 'Restore' : 'Archive'} ${flag.key}?`}
          confirmLabel={flag.archived ? 'Restore' : 'Archive'}
          danger={!flag.archived}
          changes={[{ path: 'archived', before: flag.archived, after: !flag.archived }]}
          commentRequired={requireComment && critical.length > 0}
          onCancel={() => setConfirm(false)}
          onConfirm={(comment) => void run(comment)}
        >
          <p>
            {flag.archived
              ? 'The flag comes back to the list and to what SDKs receive, as it was configured.'
              : 'The flag disappears from the list and from what SDKs receive; its history is kept and it can be restored.'}
            {critical.length > 0 && ` This changes ${critical.join(', ')} (critical).`}
          </p>
        </ReviewDialog>
      )}
    </p>
  )
}
