// API tokens (unscoped admins): create (shown once), list, revoke.
import { useState } from 'react'
import type { FormEvent } from 'react'
import { api, call, fieldErrors, messageOf, type Role } from '../api/client'
import { ConfirmDialog, Empty, ErrorState, FieldError, Loading, formatTime } from '../components/common'
import { useAsync } from '../stores/useAsync'

export function Tokens() {
  const list = useAsync(() => call(api.GET('/api/v1/tokens')), [])
  const [name, setName] = useState('')
  const [role, setRole] = useState<Role>('reader')
  const [project, setProject] = useState('')
  // Empty: the whole API as the role allows; `alerts:trigger`: only the Alertmanager webhook.
  const [scope, setScope] = useState('')
  const [created, setCreated] = useState<string>()
  const [errors, setErrors] = useState<Record<string, string>>({})
  const [revoke, setRevoke] = useState<number>()
  const create = async (e: FormEvent) => {
    e.preventDefault()
    try {
      const t = await call(api.POST('/api/v1/tokens', { body: { name, role, project: project || null, scope: scope ? 'alerts:trigger' : null } }))
      setCreated(t.token)
      setName('')
      setErrors({})
      void list.reload()
    } catch (err) {
      const f = fieldErrors(err)
      setErrors(Object.keys(f).length ? f : { name: messageOf(err) })
    }
  }
  return (
    <>
      <h1>API tokens</h1>
      {created && (
        <div className="notice" role="status">
          <p>New token — copy it now, it will not be shown again:</p>
          <code className="secret">{created}</code>
          <button type="button" onClick={() => setCreated(undefined)}>Done</button>
        </div>
      )}
      {list.error ? (
        <ErrorState error={list.error} retry={list.reload} />
      ) : !list.data ? (
        <Loading what="tokens" />
      ) : list.data.items.length === 0 ? (
        <Empty>No API tokens.</Empty>
      ) : (
        <table>
          <thead>
            <tr><th scope="col">Name</th><th scope="col">Role</th><th scope="col">Project</th><th scope="col">Limited to</th><th scope="col">Last used</th><th scope="col"><span className="sr-only">Actions</span></th></tr>
          </thead>
          <tbody>
            {list.data.items.map((t) => (
              <tr key={t.id}>
                <th scope="row">{t.name} <code>{t.prefix}…</code></th>
                <td>{t.role}</td>
                <td>{t.project ?? 'all'}</td>
                <td>{t.scope ? <code>{t.scope}</code> : 'the whole API'}</td>
                <td>{t.last_used_at ? formatTime(t.last_used_at) : 'never'}</td>
                <td>{t.revoked_at ? <span className="badge off">revoked</span> : <button type="button" className="danger" onClick={() => setRevoke(t.id)}>Revoke</button>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form className="card" onSubmit={create} aria-label="New API token">
        <h2>New token</h2>
        <label htmlFor="tok-name">Name</label>
        <input id="tok-name" required value={name} onChange={(e) => setName(e.target.value)} />
        <FieldError message={errors.name} />
        <label htmlFor="tok-role">Role</label>
        <select id="tok-role" value={role} onChange={(e) => setRole(e.target.value as Role)}>
          <option value="reader">reader</option><option value="writer">writer</option><option value="admin">admin</option>
        </select>
        <label htmlFor="tok-project">Limit to project (optional)</label>
        <input id="tok-project" value={project} onChange={(e) => setProject(e.target.value)} />
        <FieldError message={errors.project} />
        <label htmlFor="tok-scope">May call</label>
        <select id="tok-scope" value={scope} onChange={(e) => setScope(e.target.value)} aria-describedby="tok-scope-hint">
          <option value="">the whole API, as its role allows</option>
          <option value="alerts:trigger">only the Alertmanager webhook (alerts:trigger)</option>
        </select>
        <span id="tok-scope-hint" className="hint">
          An <code>alerts:trigger</code> token (<code>fp_alert_…</code>) lets Alertmanager turn flags off as the project's
          alert mappings say, and nothing else; give it the writer role and the project.
        </span>
        <button type="submit" className="primary">Create token</button>
      </form>
      {revoke !== undefined && (
        <ConfirmDialog title="Revoke this token?" confirmLabel="Revoke" danger onCancel={() => setRevoke(undefined)} onConfirm={async () => {
          const id = revoke
          setRevoke(undefined)
          await call(api.DELETE('/api/v1/tokens/{id}', { params: { path: { id } } })).catch(() => {})
          void list.reload()
        }}>
          <p>Automation using it stops working immediately.</p>
        </ConfirmDialog>
      )}
    </>
  )
}
