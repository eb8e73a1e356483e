// A flag's history: each version with who, when, why and which environments it changed,
// its diff, and reverting to it: one environment (the default) or the whole flag, after a
// preview of what changes in each environment, with the server's plain-words warning when
// a critical environment would be turned on or off.
import { useEffect, useState } from 'react'
import { api, call, messageOf, type Environment, type FlagView, type HistoryEntry, type RevertPreview } from '../api/client'
import type { Change } from '../api/diff'
import { ErrorState, Loading, formatTime } from '../components/common'
import { DiffView } from '../components/DiffView'
import { ReviewDialog } from '../components/ReviewDialog'

export function History({
  project,
  flag,
  envs,
  activeEnv,
  versions,
  error,
  writable,
  onReverted,
}: {
  project: string
  flag: FlagView
  envs: Environment[]
  activeEnv: string | undefined
  versions: HistoryEntry[] | undefined
  error: unknown
  writable: boolean
  onReverted: (v: FlagView) => void
}) {
  const [shown, setShown] = useState<number>()
  const [changes, setChanges] = useState<Change[]>()
  const [revertTo, setRevertTo] = useState<number>()
  const [message, setMessage] = useState<string>()
  const names = new Map(envs.map((e) => [e.key, e.name || e.key]))
  const showDiff = async (version: number) => {
    setShown(version)
    setChanges(undefined)
    if (version <= 1) return setChanges([])
    try {
      const d = await call(
        api.GET('/api/v1/projects/{project}/flags/{flag}/diff', {
          params: { path: { project, flag: flag.key }, query: { from: version - 1, to: version } },
        }),
      )
      setChanges(d.changes.map((c) => ({ path: c.path, before: c.before, after: c.after })))
    } catch (e) {
      setMessage(messageOf(e))
    }
  }
  return (
    <section aria-labelledby="history-h" className="history">
      <h2 id="history-h">History</h2>
      {message && <p role="status">{message}</p>}
      {error ? (
        <ErrorState error={error} />
      ) : !versions ? (
        <Loading what="history" />
      ) : (
        <ol reversed className="versions">
          {versions.map((v) => (
            <li key={v.version} data-version={v.version}>
              <div className="row">
                <strong>v{v.version}</strong> <span>{formatTime(v.created_at)}</span> <span>{v.actor}</span>
                <em>{v.comment}</em>
                <span className="changed" data-testid={`changed-v${v.version}`}>
                  {v.definition_changed && <span className="tag">definition</span>}
                  {v.environments.map((e) => (
                    <span key={e} className="tag">
                      {names.get(e) ?? e}
                    </span>
                  ))}
                </span>
                <button type="button" className="link" onClick={() => void (shown === v.version ? setShown(undefined) : showDiff(v.version))} aria-expanded={shown === v.version}>
                  {shown === v.version ? 'Hide changes' : 'Show changes'}
                </button>
                {writable && v.version !== flag.version && (
                  <button type="button" onClick={() => setRevertTo(v.version)}>
                    Revert to v{v.version}
                  </button>
                )}
              </div>
              {shown === v.version && (changes ? <DiffView changes={changes} /> : <Loading what="changes" />)}
            </li>
          ))}
        </ol>
      )}
      {revertTo !== undefined && (
        <RevertDialog
          project={project}
          flag={flag}
          envs={envs}
          to={revertTo}
          initialScope={activeEnv ?? ''}
          onCancel={() => setRevertTo(undefined)}
          onDone={(v, text) => {
            setRevertTo(undefined)
            setMessage(text)
            onReverted(v)
          }}
        />
      )}
    </section>
  )
}

/** Reverting to a version, scoped to one environment (the one being looked at) or not. */
function RevertDialog({
  project,
  flag,
  envs,
  to,
  initialScope,
  onCancel,
  onDone,
}: {
  project: string
  flag: FlagView
  envs: Environment[]
  to: number
  initialScope: string
  onCancel: () => void
  onDone: (v: FlagView, message: string) => void
}) {
  // '' is the whole flag; otherwise an environment key.
  const [scope, setScope] = useState(initialScope)
  const [preview, setPreview] = useState<RevertPreview>()
  const [error, setError] = useState<string>()
  useEffect(() => {
    let live = true
    setPreview(undefined)
    setError(undefined)
    call(
      api.GET('/api/v1/projects/{project}/flags/{flag}/revert/preview', {
        params: { path: { project, flag: flag.key }, query: { to_version: to, environment: scope || undefined } },
      }),
    ).then(
      (p) => live && setPreview(p),
      (e) => live && setError(messageOf(e)),
    )
    return () => {
      live = false
    }
  }, [project, flag.key, to, scope])
  const scopeName = scope ? envs.find((e) => e.key === scope)?.name || scope : 'the whole flag'
  const revert = async (comment: string) => {
    if (!preview) return
    try {
      const v = await call(
        api.POST('/api/v1/projects/{project}/flags/{flag}/revert', {
          params: { path: { project, flag: flag.key } },
          body: {
            to_version: to,
            environment: scope || undefined,
            version: preview.version,
            comment: comment || `Reverted ${scope ? scopeName : 'the whole flag'} to version ${to} from the dashboard`,
          },
        }),
      )
      onDone(v, `Reverted ${scopeName} to version ${to}; now version ${v.version}.`)
    } catch (e) {
      setError(messageOf(e))
    }
  }
  const blocked = !preview || preview.problems.length > 0
  return (
    <ReviewDialog
      title={`Revert ${flag.key} to version ${to}?`}
      confirmLabel={scope ? `Revert ${scopeName}` : 'Revert whole flag'}
      danger={(preview?.warnings.length ?? 0) > 0}
      warnings={preview?.warnings}
      commentRequired={!!preview?.comment_required}
      onCancel={onCancel}
      onConfirm={(comment) => (blocked ? undefined : void revert(comment))}
    >
      <label htmlFor="revert-scope">What to restore</label>
      <select id="revert-scope" value={scope} onChange={(e) => setScope(e.target.value)}>
        {envs.map((e) => (
          <option key={e.key} value={e.key}>
            Only {e.name || e.key}
          </option>
        ))}
        <option value="">The whole flag (every environment and the variants)</option>
      </select>
      {error && (
        <p className="field-error" role="alert">
          {error}
        </p>
      )}
      {!preview ? (
        !error && <Loading what="preview" />
      ) : (
        <div className="revert-preview" data-testid="revert-preview">
          {preview.environments.length === 0 && preview.definition.length === 0 && (
            <p className="hint">Nothing changes: this is already the state of version {to}.</p>
          )}
          {preview.definition.length > 0 && (
            <>
              <h3>Definition</h3>
              <DiffView changes={preview.definition.map((c) => ({ path: c.path, before: c.before, after: c.after }))} />
            </>
          )}
          {preview.environments.map((e) => (
            <div key={e.key} data-env={e.key}>
              <h3>
                {e.name} {e.critical && <span className="badge critical">critical</span>}{' '}
                <span className="sub">
                  {e.on_before ? 'on' : 'off'} → {e.on_after ? 'on' : 'off'}
                </span>
              </h3>
              <DiffView changes={e.changes.map((c) => ({ path: c.path, before: c.before, after: c.after }))} />
            </div>
          ))}
          {preview.kept.length > 0 && <p className="hint">Kept as they are (they did not exist then): {preview.kept.join(', ')}.</p>}
          {preview.problems.map((p) => (
            <p key={p.field} className="field-error" role="alert">
              Cannot revert: <code>{p.field}</code> {p.message}
            </p>
          ))}
        </div>
      )}
    </ReviewDialog>
  )
}
