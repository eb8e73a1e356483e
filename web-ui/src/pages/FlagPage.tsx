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
  type FlagDetail,
  type FlagView,
} from '../api/client'
import { diffJson } from '../api/diff'
import { allFlags } from '../api/flagList'
import { normalizeConfig, rolloutProblem, type FlagConfig, type Json, type Serve, type Variant } from '../api/model'
import { ConfigEditor } from '../components/ConfigEditor'
import { FlagLifecycle } from '../components/FlagLifecycle'
import { ConfirmDialog, ErrorState, Loading, Switch } from '../components/common'
import { humanPath, placeOf, type ErrorPlace } from '../api/errorPlaces'
import { useLeavePrompt } from '../stores/leavePrompt'
import { DiffView } from '../components/DiffView'
import { ReviewDialog } from '../components/ReviewDialog'
import { UseInCode } from '../components/ConnectGuide'
import { History } from './FlagHistory'
import { planVariantEdit, rowsOf, type FlagKind, type VariantEdit, type VariantRow } from '../api/variants'
import { VariantTable } from '../components/VariantTable'
import { useLive } from '../stores/live'
import { useSession } from '../stores/session'
import { useAsync } from '../stores/useAsync'
import { localInputToUtc, showTime } from '../api/schedule'
import { ScheduledList } from './Scheduled'

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

/** The environment a project's flags open on: the one used last, kept per project. */
const lastEnvKey = (project: string) => `flagpole.lastEnv.${project}`

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
      allFlags(project).then((items) => items.map((f) => f.key).filter((k) => k !== flag)),
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
  const [envKey, setEnvKeyState] = useState<string | undefined>(() => localStorage.getItem(lastEnvKey(project)) ?? undefined)
  const setEnvKey = (key: string) => {
    localStorage.setItem(lastEnvKey(project), key)
    setEnvKeyState(key)
  }
  // Edits per environment: switching tabs keeps them, and the bar below says where they are.
  const [drafts, setDrafts] = useState<Record<string, FlagConfig>>({})
  // The flag as it was when editing an environment started: its version is sent, and a
  // conflict is shown as the difference between it and what is stored now.
  const [bases, setBases] = useState<Record<string, FlagView>>({})
  // Every error by the server's full field name (`environments.production.rules[0]...`),
  // whichever write reported it, so each tab shows its own and the summary links to them.
  const [errors, setErrors] = useState<Record<string, string>>({})
  const [message, setMessage] = useState<string>()
  const [conflict, setConflict] = useState<Conflict & { env: string }>()
  const [pendingToggle, setPendingToggle] = useState<boolean>()
  const [reviewSave, setReviewSave] = useState<string>()
  const [changedUnderneath, setChangedUnderneath] = useState(false)
  // The "Schedule…" form: the draft of the open environment, for a time in the viewer's zone.
  const [scheduling, setScheduling] = useState(false)
  const [scheduleAt, setScheduleAt] = useState('')
  const scheduled = useAsync(
    () =>
      call(
        api.GET('/api/v1/projects/{project}/flags/{flag}/scheduled-changes', {
          params: { path: { project, flag } },
        }),
      ),
    [project, flag],
  )

  useLive(project, () => {
    void history.reload()
    void scheduled.reload()
    if (Object.keys(drafts).length) setChangedUnderneath(true)
    void view.reload()
  })

  useEffect(() => {
    setDrafts({})
    setBases({})
    setErrors({})
    setConflict(undefined)
    setChangedUnderneath(false)
  }, [flag])

  const envList = envs.data ?? []
  const envName = (key: string) => {
    const e = envList.find((x) => x.key === key)
    return e?.name || key
  }
  const dirtyEnvs = envList.filter((e) => drafts[e.key] !== undefined).map((e) => e.key)
  const leavePrompt = useLeavePrompt(dirtyEnvs.length ? dirtyEnvs.map(envName).join(', ') : null)

  if (view.error) return <ErrorState error={view.error} retry={view.reload} />
  if (!view.data || !envs.data) return <Loading what="flag" />
  const f = view.data
  // Config writes, reverts and conflicts answer the flag without its lifecycle (it is
  // decided when a flag is read): keep the one shown until the live update refetches it.
  const withLifecycle = (v: FlagView): FlagDetail => ({ ...v, lifecycle: f.lifecycle })
  // The environment used last; else a critical one (the one people come to change).
  const activeEnv =
    (envKey && envList.some((e) => e.key === envKey) ? envKey : undefined) ??
    envList.find((e) => e.critical)?.key ??
    envList[0]?.key
  const variants = f.variants as unknown as Variant[]
  const env = envList.find((e) => e.key === activeEnv)
  const storedOf = (key: string) => normalizeConfig((f.environments as Record<string, unknown>)[key])
  const stored = storedOf(activeEnv ?? '')
  const draft = activeEnv ? drafts[activeEnv] : undefined
  const config = draft ?? stored
  const dirty = draft !== undefined
  const requireComment = !!settings.data?.require_critical_comment
  const places = Object.entries(errors).map(([field, msg]) => placeOf(field, msg))
  const errorsIn = (key: string) => places.filter((p) => !p.flag && p.env === key).length

  const edit = (c: FlagConfig) => {
    if (!activeEnv) return
    if (!dirty) setBases((b) => ({ ...b, [activeEnv]: f }))
    setDrafts((d) => ({ ...d, [activeEnv]: c }))
    setMessage(undefined)
  }

  const discard = (key: string) => {
    setDrafts(({ [key]: _, ...rest }) => rest)
    setErrors((all) => Object.fromEntries(Object.entries(all).filter(([k]) => !k.startsWith(`environments.${key}`))))
    setMessage(undefined)
  }

  /** Checks the draft, then saves it, through the review in a critical environment. */
  const requestSave = (key: string) => {
    const d = drafts[key]
    if (!d) return
    setEnvKey(key)
    const local = localProblems(d)
    if (Object.keys(local).length > 0) {
      setErrors(Object.fromEntries(Object.entries(local).map(([k, v]) => [`environments.${key}.${k}`, v])))
      setMessage('Fix the highlighted fields before saving.')
      return
    }
    if (envList.find((e) => e.key === key)?.critical) setReviewSave(key)
    else void save(key, '')
  }

  const save = async (key: string, comment: string) => {
    setReviewSave(undefined)
    const d = drafts[key]
    if (!d) return
    setErrors({})
    setMessage(undefined)
    try {
      const saved = await call(
        api.PUT('/api/v1/projects/{project}/flags/{flag}/environments/{env}', {
          params: { path: { project, flag, env: key } },
          body: { config: d as never, version: bases[key]?.version ?? f.version, comment: comment || 'Edited in the dashboard' },
        }),
      )
      view.setData(withLifecycle(saved))
      discard(key)
      // Other environments' drafts stay; they now save against this version.
      setBases((b) => Object.fromEntries(Object.keys(b).filter((k) => k !== key).map((k) => [k, saved])))
      setChangedUnderneath(false)
      setMessage(`Saved as version ${saved.version}.`)
      void history.reload()
    } catch (e) {
      if (e instanceof ApiFailure && e.status === 409 && e.body?.current) {
        const theirs = e.body.current as FlagView
        const mine: FlagView = { ...f, environments: { ...f.environments, [key]: d as never } }
        setConflict({ mine, theirs, env: key })
        return
      }
      // A config write names fields under `config`; keep them under their environment.
      const fields = fieldErrors(e)
      setErrors(
        Object.fromEntries(
          Object.entries(fields).map(([k, v]) => [
            k === 'config' ? `environments.${key}` : k.startsWith('config.') ? `environments.${key}.${k.slice(7)}` : k,
            v,
          ]),
        ),
      )
      setMessage(messageOf(e))
    }
  }

  /** Schedules the open environment's draft for `scheduleAt` (viewer's zone; sent as UTC). */
  const schedule = async (key: string) => {
    const d = drafts[key]
    const at = localInputToUtc(scheduleAt)
    if (!d) return
    if (!at) {
      setErrors({ at: 'Pick a date and time.' })
      setMessage('Pick a date and time.')
      return
    }
    setErrors({})
    setMessage(undefined)
    try {
      const created = await call(
        api.POST('/api/v1/projects/{project}/flags/{flag}/environments/{env}/scheduled-changes', {
          params: { path: { project, flag, env: key } },
          body: {
            at,
            config: d as never,
            version: bases[key]?.version ?? f.version,
            comment: 'Scheduled in the dashboard',
          },
        }),
      )
      discard(key)
      setScheduling(false)
      setMessage(`Scheduled for ${showTime(created.at)}.`)
      void scheduled.reload()
    } catch (e) {
      const fields = fieldErrors(e)
      setErrors(
        Object.fromEntries(
          Object.entries(fields).map(([k, v]) => [
            k.startsWith('config.') ? `environments.${key}.${k.slice(7)}` : k,
            v,
          ]),
        ),
      )
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
      view.setData(withLifecycle(saved))
      if (draft) setDrafts((d) => ({ ...d, [activeEnv]: { ...draft, enabled } }))
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
          {' · '}<Link to={`/p/${project}/flags/${f.key}/insights`}>Insights</Link>
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

      <FlagLifecycle project={project} flag={f} writable={writable} onSaved={(v) => view.setData(v)} />

      <Variants
        flag={f}
        project={project}
        writable={writable}
        critical={envList.filter((e) => e.critical).map((e) => e.name || e.key)}
        requireComment={requireComment}
        onSaved={(v) => {
          view.setData(v)
          // A rename rewrote every environment: drafts made against the old keys are stale.
          setDrafts({})
          setBases({})
        }}
        onErrors={(fields) => setErrors(Object.fromEntries(Object.entries(fields).filter(([k]) => !k.startsWith('variants') && k !== 'to')))}
      />

      {places.length > 0 && (
        <ErrorSummary
          places={places}
          envName={envName}
          project={project}
          onOpen={(key) => setEnvKey(key)}
        />
      )}

      <section className="envs" aria-label="Environments">
        <div role="tablist" aria-label="Environment" className="tabs">
          {envList.map((e) => {
            const on = !!(f.environments as Record<string, { enabled?: boolean }>)[e.key]?.enabled
            const pending = drafts[e.key] !== undefined
            const wrong = errorsIn(e.key)
            return (
              <button
                key={e.key}
                role="tab"
                type="button"
                aria-selected={e.key === activeEnv}
                className={e.key === activeEnv ? 'active' : ''}
                data-env={e.key}
                onClick={() => setEnvKey(e.key)}
              >
                {e.name || e.key}
                {e.critical && <span className="badge critical">critical</span>}{' '}
                <span className={`dot ${on ? 'on' : 'off'}`} aria-label={on ? 'on' : 'off'} />
                {pending && (
                  <span className="unsaved-mark" title="Unsaved changes" aria-label="unsaved changes">
                    ●
                  </span>
                )}
                {wrong > 0 && (
                  <span className="badge off error-count" aria-label={`${wrong} invalid fields`}>
                    {wrong}
                  </span>
                )}
              </button>
            )
          })}
        </div>
        {env && activeEnv && (
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
              errors={errorsUnder(errors, `environments.${activeEnv}`)}
              segments={segments.data ?? []}
              otherFlags={others.data ?? []}
              readOnly={!writable}
            />
            {writable && (
              <div className="actions save">
                <button type="button" className="primary" disabled={!dirty} onClick={() => requestSave(activeEnv)}>
                  Save {env.name || env.key}
                </button>
                <button type="button" disabled={!dirty} onClick={() => discard(activeEnv)}>
                  Discard changes
                </button>
                <button type="button" disabled={!dirty} onClick={() => setScheduling((s) => !s)}>
                  Schedule…
                </button>
                {scheduling && dirty && (
                  <span className="schedule-form">
                    <label>
                      Apply at (your time){' '}
                      <input
                        type="datetime-local"
                        aria-label="Apply at"
                        value={scheduleAt}
                        onChange={(e) => setScheduleAt(e.target.value)}
                      />
                    </label>{' '}
                    <button type="button" className="primary" onClick={() => void schedule(activeEnv)}>
                      Schedule change
                    </button>
                  </span>
                )}
                {message && (
                  <span role="status" className={Object.keys(errors).length ? 'field-error' : 'ok'}>
                    {message}
                  </span>
                )}
              </div>
            )}
          </div>
        )}
      </section>

      {dirtyEnvs.length > 0 && (
        <UnsavedBar envs={dirtyEnvs} envName={envName} onSave={requestSave} onDiscard={discard} onOpen={setEnvKey} />
      )}

      <section aria-label="Scheduled changes of this flag">
        <h2>Scheduled changes</h2>
        {/* The project's list is linked from here rather than the header, which must stay
            on one row at 1280 px. */}
        <p className="hint">
          Make an edit, then "Schedule…" to apply it later. <Link to={`/p/${project}/scheduled`}>All scheduled changes in this project</Link>
        </p>
        {scheduled.error ? (
          <ErrorState error={scheduled.error} retry={scheduled.reload} />
        ) : !scheduled.data ? (
          <Loading what="scheduled changes" />
        ) : (
          <ScheduledList project={project} changes={scheduled.data} onChanged={() => void scheduled.reload()} />
        )}
      </section>

      <UseInCode project={project} flag={f.key} kind={f.kind} />

      <History
        project={project}
        flag={f}
        envs={envList}
        activeEnv={activeEnv}
        versions={history.data}
        error={history.error}
        writable={writable}
        onReverted={(v) => {
          view.setData(withLifecycle(v))
          setDrafts({})
          setBases({})
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
      {reviewSave && drafts[reviewSave] && (
        <ReviewDialog
          title={`Save ${f.key} in ${envName(reviewSave)}?`}
          confirmLabel="Save"
          changes={diffJson(storedOf(reviewSave), drafts[reviewSave])}
          commentRequired={requireComment}
          onCancel={() => setReviewSave(undefined)}
          onConfirm={(comment) => void save(reviewSave, comment)}
        >
          <p>{envName(reviewSave)} is a critical environment: review the change before it applies.</p>
        </ReviewDialog>
      )}
      {conflict && (
        <ConfirmDialog
          title="Someone else changed this flag"
          confirmLabel="Reload their version"
          onCancel={() => setConflict(undefined)}
          onConfirm={() => {
            view.setData(withLifecycle(conflict.theirs))
            discard(conflict.env)
            setConflict(undefined)
            setMessage('Reloaded the current version; your edits were discarded.')
          }}
        >
          <p>
            You edited version {bases[conflict.env]?.version}; it is now at version {conflict.theirs.version}. Their changes
            since you started:
          </p>
          <DiffView
            changes={diffJson(bases[conflict.env] ?? f, conflict.theirs).filter((c) => !['updated_at', 'version'].includes(c.path))}
          />
          <p>Your unsaved edits compared with their version:</p>
          <DiffView
            before={(conflict.theirs.environments as Record<string, Json>)[conflict.env]}
            after={(conflict.mine.environments as Record<string, Json>)[conflict.env]}
          />
        </ConfirmDialog>
      )}
      {leavePrompt}
    </>
  )
}

/** Every error the server reported, each a link to the tab (or the other flag) holding it. */
function ErrorSummary({
  places,
  envName,
  project,
  onOpen,
}: {
  places: ErrorPlace[]
  envName: (key: string) => string
  project: string
  onOpen: (env: string) => void
}) {
  return (
    <div className="error-summary" role="alert" aria-labelledby="error-summary-h">
      <h2 id="error-summary-h">
        {places.length === 1 ? '1 field is invalid' : `${places.length} fields are invalid`}
      </h2>
      <ul>
        {places.map((p) => (
          <li key={p.field}>
            {p.flag ? (
              <>
                <Link to={`/p/${project}/flags/${p.flag}`}>flag {p.flag}</Link>
                {p.env && ` in ${envName(p.env)}`} › {humanPath(p.path)}: {p.message.replace(/^in environment `[^`]+`: /, '')}
              </>
            ) : p.env ? (
              <>
                <button type="button" className="link" onClick={() => onOpen(p.env!)}>
                  {envName(p.env)} › {humanPath(p.path)}
                </button>
                : {p.message}
              </>
            ) : (
              <>
                {humanPath(p.path)}: {p.message}
              </>
            )}
          </li>
        ))}
      </ul>
    </div>
  )
}

/** Which environments have unsaved edits, with save and discard for each. */
function UnsavedBar({
  envs,
  envName,
  onSave,
  onDiscard,
  onOpen,
}: {
  envs: string[]
  envName: (key: string) => string
  onSave: (env: string) => void
  onDiscard: (env: string) => void
  onOpen: (env: string) => void
}) {
  return (
    <div className="unsaved-bar" role="region" aria-label="Unsaved changes">
      <strong>Unsaved changes in {envs.map(envName).join(', ')}</strong>
      {envs.map((key) => (
        <span key={key} className="unsaved-env">
          <button type="button" className="link" onClick={() => onOpen(key)}>
            {envName(key)}
          </button>
          <button type="button" className="primary" onClick={() => onSave(key)}>
            Save changes in {envName(key)}
          </button>
          <button type="button" onClick={() => onDiscard(key)}>
            Discard changes in {envName(key)}
          </button>
        </span>
      ))}
    </div>
  )
}

function Variants({
  flag,
  project,
  writable,
  critical,
  requireComment,
  onSaved,
  onErrors,
}: {
  flag: FlagDetail
  project: string
  writable: boolean
  /** Names of the critical environments: variants change what each of them serves. */
  critical: string[]
  requireComment: boolean
  onSaved: (v: FlagDetail) => void
  /** Errors the server found elsewhere (in environments, in other flags), for the page. */
  onErrors: (fields: Record<string, string>) => void
}) {
  const kind = flag.kind as FlagKind
  const [draft, setDraft] = useState<VariantRow[]>()
  const [review, setReview] = useState<VariantEdit>()
  const [errors, setErrors] = useState<Record<string, string>>({})
  const [message, setMessage] = useState<string>()
  const [failed, setFailed] = useState(false)
  const variants = flag.variants as unknown as Variant[]
  const rows = draft ?? rowsOf(kind, variants)
  const save = () => {
    const plan = planVariantEdit(kind, variants, rows)
    if (Object.keys(plan.errors).length) return setErrors(plan.errors)
    if (plan.renames.length === 0 && !plan.variants) return setDraft(undefined)
    if (critical.length > 0) setReview(plan)
    else void send(plan, '')
  }
  /** Each rename is one server write that rewrites every reference; then the rest. */
  const send = async (plan: VariantEdit, comment: string) => {
    setReview(undefined)
    setErrors({})
    setFailed(false)
    onErrors({})
    let current = flag
    try {
      for (const { from, to } of plan.renames) {
        current = await call(
          api.POST('/api/v1/projects/{project}/flags/{flag}/variants/{variant}/rename', {
            params: { path: { project, flag: flag.key, variant: from } },
            body: { to, version: current.version, comment },
          }),
        )
        onSaved(current)
      }
      if (plan.variants) {
        current = await call(
          api.PATCH('/api/v1/projects/{project}/flags/{flag}', {
            params: { path: { project, flag: flag.key } },
            body: { variants: plan.variants as never, version: current.version, comment },
          }),
        )
        onSaved(current)
      }
      setDraft(undefined)
      const renamed = plan.renames.map((r) => `${r.from} → ${r.to}`).join(', ')
      setMessage(renamed ? `Renamed ${renamed} in every environment.` : 'Variants saved.')
    } catch (e) {
      const fields = fieldErrors(e)
      // A rename's `to` is the key input of the renamed row.
      const own: Record<string, string> = {}
      for (const [field, msg] of Object.entries(fields)) {
        if (field === 'to') {
          const i = rows.findIndex((r) => r.from !== undefined && r.from !== r.key)
          own[`variants[${Math.max(i, 0)}].key`] = msg
        } else if (field.startsWith('variants')) own[field] = msg
      }
      setErrors(own)
      onErrors(fields)
      setFailed(true)
      const elsewhere = Object.keys(fields).length - Object.keys(own).length
      setMessage(elsewhere > 0 ? 'Not saved: the variants are still used where listed below.' : messageOf(e))
    }
  }
  return (
    <section aria-labelledby="variants-h" className="variants">
      <h2 id="variants-h">Variants</h2>
      <VariantTable kind={kind} rows={rows} onChange={setDraft} errors={errors} readOnly={!writable} />
      {writable && draft && (
        <div className="actions save-variants">
          <button type="button" className="primary" onClick={() => void save()}>
            Save variants
          </button>
          <button
            type="button"
            onClick={() => {
              setDraft(undefined)
              setErrors({})
              setFailed(false)
              onErrors({})
              setMessage(undefined)
            }}
          >
            Discard
          </button>
        </div>
      )}
      {message && <p role="status" className={failed ? 'field-error' : 'ok'}>{message}</p>}
      {review && (
        <ReviewDialog
          title={`Save the variants of ${flag.key}?`}
          confirmLabel="Save variants"
          changes={[
            ...review.renames.map((r) => ({ path: `rename ${r.from}`, before: r.from, after: r.to })),
            ...(review.variants ? diffJson(variants, review.variants) : []),
          ]}
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
  onDone: (v: FlagDetail) => void
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
