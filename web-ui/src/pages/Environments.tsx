// Environments of a project, whether each is critical (changes there go through a review
// with a comment), the project's comment requirement and flag lifetimes, SDK keys (created keys are shown
// once, with the connect guide filled in with them; revoke; when each was last seen), and
// "Connect an application" per environment.
import { useState } from 'react'
import type { FormEvent } from 'react'
import { useParams } from 'react-router'
import { api, call, fieldErrors, messageOf, type Environment } from '../api/client'
import { ConfirmDialog, Empty, ErrorState, FieldError, Loading, formatTime } from '../components/common'
import { ConnectGuide } from '../components/ConnectGuide'
import { LifetimesSetting } from '../components/LifetimesSetting'
import { ReviewDialog } from '../components/ReviewDialog'
import { useSession } from '../stores/session'
import { useAsync } from '../stores/useAsync'

export function Environments() {
  const { project = '' } = useParams()
  const { canAdmin } = useSession()
  const admin = canAdmin(project)
  const envs = useAsync(
    () => call(api.GET('/api/v1/projects/{project}/environments', { params: { path: { project } } })),
    [project],
  )
  const settings = useAsync(
    () => call(api.GET('/api/v1/projects/{project}', { params: { path: { project } } })),
    [project],
  )
  const [key, setKey] = useState('')
  const [name, setName] = useState('')
  const [critical, setCritical] = useState(false)
  const [errors, setErrors] = useState<Record<string, string>>({})
  const create = async (e: FormEvent) => {
    e.preventDefault()
    try {
      await call(
        api.POST('/api/v1/projects/{project}/environments', { params: { path: { project } }, body: { key, name, critical } }),
      )
      setKey('')
      setName('')
      setCritical(false)
      setErrors({})
      void envs.reload()
    } catch (err) {
      const f = fieldErrors(err)
      setErrors(Object.keys(f).length ? f : { key: messageOf(err) })
    }
  }
  return (
    <>
      <h1>Environments</h1>
      {admin && settings.data && (
        <CommentSetting
          project={project}
          required={settings.data.require_critical_comment}
          version={settings.data.version}
          onSaved={() => void settings.reload()}
        />
      )}
      <LifetimesSetting
        project={project}
        admin={admin}
        version={settings.data?.version}
        onSaved={() => void settings.reload()}
      />
      {envs.error ? (
        <ErrorState error={envs.error} retry={envs.reload} />
      ) : !envs.data ? (
        <Loading what="environments" />
      ) : envs.data.length === 0 ? (
        <Empty>No environments.</Empty>
      ) : (
        envs.data.map((e) => (
          <EnvCard
            key={e.key}
            project={project}
            env={e}
            admin={admin}
            requireComment={!!settings.data?.require_critical_comment}
            onChanged={() => void envs.reload()}
          />
        ))
      )}
      {admin && (
        <form className="card" onSubmit={create} aria-label="New environment">
          <h2>New environment</h2>
          <label htmlFor="env-key">Key</label>
          <input
            id="env-key"
            required
            value={key}
            aria-describedby="env-key-hint"
            onChange={(e) => setKey(e.target.value)}
          />
          <span id="env-key-hint" className="hint">
            Used in URLs and the API: letters, digits, <code>-</code> and <code>_</code>. It cannot be changed later.
          </span>
          <FieldError message={errors.key} />
          <label htmlFor="env-name">Name</label>
          <input id="env-name" value={name} onChange={(e) => setName(e.target.value)} />
          <label className="check">
            <input type="checkbox" checked={critical} onChange={(e) => setCritical(e.target.checked)} /> Critical (production
            traffic): every change is reviewed, with a comment
          </label>
          <button type="submit" className="primary">Create environment</button>
        </form>
      )}
    </>
  )
}

/** The project's setting: every change in a critical environment must carry a comment. */
function CommentSetting({
  project,
  required,
  version,
  onSaved,
}: {
  project: string
  required: boolean
  version: number
  onSaved: () => void
}) {
  const [review, setReview] = useState(false)
  const [error, setError] = useState<string>()
  const save = async (next: boolean, comment: string) => {
    setReview(false)
    try {
      await call(
        api.PATCH('/api/v1/projects/{project}', {
          params: { path: { project } },
          body: { require_critical_comment: next, version, comment },
        }),
      )
      setError(undefined)
      onSaved()
    } catch (err) {
      setError(messageOf(err))
    }
  }
  return (
    <section className="card" aria-labelledby="settings-h">
      <h2 id="settings-h">Project settings</h2>
      <label className="check">
        <input
          type="checkbox"
          checked={required}
          onChange={(e) => (e.target.checked ? void save(true, '') : setReview(true))}
        />{' '}
        Require a comment for every change in a critical environment (dashboard and API)
      </label>
      {error && <p className="field-error" role="alert">{error}</p>}
      {review && (
        <ReviewDialog
          title="Stop requiring comments?"
          confirmLabel="Stop requiring"
          danger
          changes={[{ path: 'require_critical_comment', before: true, after: false }]}
          commentRequired
          onCancel={() => setReview(false)}
          onConfirm={(comment) => void save(false, comment)}
        />
      )}
    </section>
  )
}

function EnvCard({
  project,
  env,
  admin,
  requireComment,
  onChanged,
}: {
  project: string
  env: Environment
  admin: boolean
  requireComment: boolean
  onChanged: () => void
}) {
  // Changing a critical environment (making it not critical included) is reviewed.
  const [review, setReview] = useState<boolean>()
  const [settingError, setSettingError] = useState<string>()
  const setCritical = async (critical: boolean, comment: string) => {
    setReview(undefined)
    try {
      await call(
        api.PATCH('/api/v1/projects/{project}/environments/{env}', {
          params: { path: { project, env: env.key } },
          body: { critical, version: env.version, comment },
        }),
      )
      setSettingError(undefined)
      onChanged()
    } catch (err) {
      setSettingError(messageOf(err))
    }
  }
  const keys = useAsync(
    () =>
      admin
        ? call(api.GET('/api/v1/projects/{project}/environments/{env}/sdk-keys', { params: { path: { project, env: env.key } } }))
        : Promise.resolve({ items: [] }),
    [project, env.key, admin],
  )
  const [name, setName] = useState('')
  const [created, setCreated] = useState<{ key: string; id: number }>()
  const [guide, setGuide] = useState(false)
  const [error, setError] = useState<string>()
  const [revoke, setRevoke] = useState<{ id: number; name: string }>()
  const create = async (e: FormEvent) => {
    e.preventDefault()
    try {
      const k = await call(
        api.POST('/api/v1/projects/{project}/environments/{env}/sdk-keys', {
          params: { path: { project, env: env.key } },
          body: { name: name || 'dashboard' },
        }),
      )
      setCreated({ key: k.key, id: k.id })
      setGuide(true)
      setName('')
      void keys.reload()
    } catch (err) {
      setError(messageOf(err))
    }
  }
  const doRevoke = async (id: number) => {
    setRevoke(undefined)
    try {
      await call(api.DELETE('/api/v1/projects/{project}/environments/{env}/sdk-keys/{id}', { params: { path: { project, env: env.key, id } } }))
      void keys.reload()
    } catch (err) {
      setError(messageOf(err))
    }
  }
  return (
    <section className="card" aria-labelledby={`env-${env.key}`}>
      <h2 id={`env-${env.key}`}>
        {env.name || env.key} <code>{env.key}</code> {env.critical && <span className="badge critical">critical</span>}
      </h2>
      <p className="sub">Data version {env.data_version}</p>
      {admin && (
        <label className="check">
          <input
            type="checkbox"
            checked={env.critical}
            onChange={(e) => (env.critical ? setReview(e.target.checked) : void setCritical(e.target.checked, ''))}
          />{' '}
          Critical: every change in {env.name || env.key} is reviewed, with a comment
        </label>
      )}
      {settingError && <p className="field-error" role="alert">{settingError}</p>}
      {review !== undefined && (
        <ReviewDialog
          title={`Make ${env.name || env.key} not critical?`}
          confirmLabel="Save"
          danger
          changes={[{ path: 'critical', before: env.critical, after: review }]}
          commentRequired={requireComment}
          onCancel={() => setReview(undefined)}
          onConfirm={(comment) => void setCritical(review, comment)}
        />
      )}
      {admin && (
        <>
          <h3>SDK keys</h3>
          {created && (
            <div className="notice" role="status">
              <p>New SDK key — copy it now, it will not be shown again:</p>
              <code className="secret" data-testid="new-sdk-key">{created.key}</code>
              <button type="button" onClick={() => void navigator.clipboard?.writeText(created.key)}>Copy</button>
              <button type="button" onClick={() => setCreated(undefined)}>Done</button>
            </div>
          )}
          {keys.error ? (
            <ErrorState error={keys.error} />
          ) : !keys.data ? (
            <Loading what="keys" />
          ) : keys.data.items.length === 0 ? (
            <p className="hint">No SDK keys.</p>
          ) : (
            <ul className="keys">
              {keys.data.items.map((k) => (
                <li key={k.id}>
                  <code>{k.prefix}…</code> {k.name} · created {formatTime(k.created_at)} by {k.created_by} ·{' '}
                  {k.last_seen_at ? `last seen ${formatTime(k.last_seen_at)}` : 'never connected'}
                  {k.revoked_at ? (
                    <span className="badge off">revoked</span>
                  ) : (
                    <button type="button" className="danger" onClick={() => setRevoke({ id: k.id, name: k.name })}>
                      Revoke
                    </button>
                  )}
                </li>
              ))}
            </ul>
          )}
          <form onSubmit={create} className="inline" aria-label={`New SDK key for ${env.key}`}>
            <label htmlFor={`sdk-${env.key}`}>Key name</label>
            <input id={`sdk-${env.key}`} value={name} onChange={(e) => setName(e.target.value)} placeholder="web-frontend" />
            <button type="submit">Create SDK key</button>
          </form>
          {error && <p className="field-error" role="alert">{error}</p>}
          <button type="button" aria-expanded={guide} onClick={() => setGuide(!guide)}>
            {guide ? 'Hide' : 'Connect an application'}
          </button>
          {guide && (
            <ConnectGuide
              project={project}
              env={env.key}
              envName={env.name || env.key}
              sdkKey={created?.key}
              keyId={created?.id}
            />
          )}
        </>
      )}
      {revoke && (
        <ConfirmDialog title={`Revoke SDK key ${revoke.name}?`} confirmLabel="Revoke" danger onCancel={() => setRevoke(undefined)} onConfirm={() => void doRevoke(revoke.id)}>
          <p>Applications using it stop receiving flags.</p>
        </ConfirmDialog>
      )}
    </section>
  )
}
