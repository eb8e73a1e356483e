// Users (unscoped admins): create, change role, disable, reset a password. The server keeps
// at least one admin of all projects and says so when a change would remove the last.
import { useState } from 'react'
import type { FormEvent } from 'react'
import { api, call, fieldErrors, messageOf, type Role, type User } from '../api/client'
import { ConfirmDialog, Empty, ErrorState, FieldError, Loading } from '../components/common'
import { useSession } from '../stores/session'
import { useAsync } from '../stores/useAsync'

export function Users() {
  const { user: me } = useSession()
  const list = useAsync(() => call(api.GET('/api/v1/users')), [])
  const [email, setEmail] = useState('')
  const [password, setPassword] = useState('')
  const [role, setRole] = useState<Role>('reader')
  const [errors, setErrors] = useState<Record<string, string>>({})
  const [error, setError] = useState<string>()
  const [reset, setReset] = useState<User>()
  const [newPassword, setNewPassword] = useState('')
  const [resetError, setResetError] = useState<string>()
  const [resetDone, setResetDone] = useState<string>()
  const create = async (e: FormEvent) => {
    e.preventDefault()
    try {
      await call(api.POST('/api/v1/users', { body: { email, password, role } }))
      setEmail('')
      setPassword('')
      setErrors({})
      void list.reload()
    } catch (err) {
      const f = fieldErrors(err)
      setErrors(Object.keys(f).length ? f : { email: messageOf(err) })
    }
  }
  const update = async (u: User, patch: { role?: Role; disabled?: boolean }) => {
    setError(undefined)
    try {
      await call(api.PATCH('/api/v1/users/{id}', { params: { path: { id: u.id } }, body: { ...patch, version: u.version } }))
      void list.reload()
    } catch (err) {
      setError(`${u.email}: ${messageOf(err)}`)
      // The select shows what was asked for; the list shows what is stored.
      void list.reload()
    }
  }
  const doReset = async (u: User) => {
    try {
      await call(api.PATCH('/api/v1/users/{id}', { params: { path: { id: u.id } }, body: { password: newPassword, version: u.version } }))
      setReset(undefined)
      setNewPassword('')
      setResetError(undefined)
      setResetDone(`${u.email}: password reset; their sessions were signed out.`)
      void list.reload()
    } catch (err) {
      setResetError(fieldErrors(err).password ?? messageOf(err))
    }
  }
  return (
    <>
      <h1>Users</h1>
      {error && <p className="field-error" role="alert">{error}</p>}
      {resetDone && <p role="status" className="ok">{resetDone}</p>}
      {list.error ? (
        <ErrorState error={list.error} retry={list.reload} />
      ) : !list.data ? (
        <Loading what="users" />
      ) : list.data.items.length === 0 ? (
        <Empty>No users.</Empty>
      ) : (
        <table>
          <thead>
            <tr><th scope="col">Email</th><th scope="col">Role</th><th scope="col">Project</th><th scope="col">Status</th></tr>
          </thead>
          <tbody>
            {list.data.items.map((u) => (
              <tr key={u.id}>
                <th scope="row">{u.email}</th>
                <td>
                  <label className="sr-only" htmlFor={`role-${u.id}`}>Role of {u.email}</label>
                  <select id={`role-${u.id}`} value={u.role} disabled={u.id === me?.id} onChange={(e) => void update(u, { role: e.target.value as Role })}>
                    <option value="reader">reader</option><option value="writer">writer</option><option value="admin">admin</option>
                  </select>
                </td>
                <td>{u.project ?? 'all'}</td>
                <td>
                  {u.id !== me?.id && (
                    <button type="button" onClick={() => void update(u, { disabled: !u.disabled })}>
                      {u.disabled ? 'Enable' : 'Disable'}
                    </button>
                  )}
                  {u.disabled && <span className="badge off">disabled</span>}
                  {u.id !== me?.id && (
                    <button type="button" onClick={() => { setReset(u); setResetDone(undefined) }}>
                      Reset password
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {reset && (
        <ConfirmDialog
          title={`Reset the password of ${reset.email}?`}
          confirmLabel="Reset password"
          danger
          confirmDisabled={newPassword.length < 12}
          onCancel={() => { setReset(undefined); setNewPassword(''); setResetError(undefined) }}
          onConfirm={() => void doReset(reset)}
        >
          <p>They are signed out everywhere and sign in with the new password. Your own password is changed under your account.</p>
          <label htmlFor="reset-password">New password (at least 12 characters)</label>
          <input id="reset-password" type="password" autoComplete="new-password" value={newPassword} onChange={(e) => setNewPassword(e.target.value)} />
          <FieldError message={resetError} />
        </ConfirmDialog>
      )}
      <form className="card" onSubmit={create} aria-label="New user">
        <h2>New user</h2>
        <label htmlFor="user-email">Email</label>
        <input id="user-email" type="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
        <FieldError message={errors.email} />
        <label htmlFor="user-password">Initial password</label>
        <input id="user-password" type="password" required value={password} onChange={(e) => setPassword(e.target.value)} />
        <FieldError message={errors.password} />
        <label htmlFor="user-role">Role</label>
        <select id="user-role" value={role} onChange={(e) => setRole(e.target.value as Role)}>
          <option value="reader">reader</option><option value="writer">writer</option><option value="admin">admin</option>
        </select>
        <button type="submit" className="primary">Create user</button>
      </form>
    </>
  )
}
