// Environments of a project and their SDK keys (created keys are shown once; revoke).
import { useState } from 'react'
import type { FormEvent } from 'react'
import { useParams } from 'react-router'
import { api, call, fieldErrors, messageOf, type Environment } from '../api/client'
import { ConfirmDialog, Empty, ErrorState, FieldError, Loading, formatTime } from '../components/common'
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
  const [key, setKey] = useState('')
  const [name, setName] = useState('')
  const [errors, setErrors] = useState<Record<string, string>>({})
  const create = async (e: FormEvent) => {
    e.preventDefault()
    try {
      await call(api.POST('/api/v1/projects/{project}/environments', { params: { path: { project } }, body: { key, name } }))
      setKey('')
      setName('')
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
      {envs.error ? (
        <ErrorState error={envs.error} retry={envs.reload} />
      ) : !envs.data ? (
        <Loading what="environments" />
      ) : envs.data.length === 0 ? (
        <Empty>No environments.</Empty>
      ) : (
        envs.data.map((e) => <EnvCard key={e.key} project={project} env={e} admin={admin} />)
      )}
      {admin && (
        <form className="card" onSubmit={create} aria-label="New environment">
          <h2>New environment</h2>
          <label htmlFor="env-key">Key</label>
          <input id="env-key" required value={key} onChange={(e) => setKey(e.target.value)} />
          <FieldError message={errors.key} />
          <label htmlFor="env-name">Name</label>
          <input id="env-name" value={name} onChange={(e) => setName(e.target.value)} />
          <button type="submit" className="primary">Create environment</button>
        </form>
      )}
    </>
  )
}

function EnvCard({ project, env, admin }: { project: string; env: Environment; admin: boolean }) {
  const keys = useAsync(
    () =>
      admin
        ? call(api.GET('/api/v1/projects/{project}/environments/{env}/sdk-keys', { params: { path: { project, env: env.key } } }))
        : Promise.resolve({ items: [] }),
    [project, env.key, admin],
  )
  const [name, setName] = useState('')
  const [created, setCreated] = useState<string>()
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
      setCreated(k.key)
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
        {env.name || env.key} <code>{env.key}</code>
      </h2>
      <p className="sub">Data version {env.data_version}</p>
      {admin && (
        <>
          <h3>SDK keys</h3>
          {created && (
            <div className="notice" role="status">
              <p>New SDK key — copy it now, it will not be shown again:</p>
              <code className="secret" data-testid="new-sdk-key">{created}</code>
              <button type="button" onClick={() => void navigator.clipboard?.writeText(created)}>Copy</button>
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
                  <code>{k.prefix}…</code> {k.name} · created {formatTime(k.created_at)} by {k.created_by}
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
