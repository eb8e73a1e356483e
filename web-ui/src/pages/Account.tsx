// The signed-in user's account: change your own password (with the current one). The
// server ends your other sessions; this one stays signed in.
import { useState } from 'react'
import type { FormEvent } from 'react'
import { api, call, fieldErrors, messageOf } from '../api/client'
import { FieldError } from '../components/common'
import { useSession } from '../stores/session'

export function Account() {
  const { user } = useSession()
  const [current, setCurrent] = useState('')
  const [next, setNext] = useState('')
  const [repeat, setRepeat] = useState('')
  const [errors, setErrors] = useState<Record<string, string>>({})
  const [done, setDone] = useState(false)
  const submit = async (e: FormEvent) => {
    e.preventDefault()
    setDone(false)
    if (next !== repeat) {
      setErrors({ repeat: 'does not match the new password' })
      return
    }
    try {
      await call(api.POST('/api/v1/auth/password', { body: { current_password: current, new_password: next } }))
      setCurrent('')
      setNext('')
      setRepeat('')
      setErrors({})
      setDone(true)
    } catch (err) {
      const f = fieldErrors(err)
      setErrors(Object.keys(f).length ? f : { '': messageOf(err) })
    }
  }
  return (
    <>
      <h1>Your account</h1>
      <p>
        Signed in as <strong>{user?.email}</strong> ({user?.role}
        {user?.project ? ` of ${user.project}` : ''}).
      </p>
      <form className="card" onSubmit={submit} aria-label="Change password">
        <h2>Change password</h2>
        <label htmlFor="pw-current">Current password</label>
        <input id="pw-current" type="password" autoComplete="current-password" required value={current} onChange={(e) => setCurrent(e.target.value)} />
        <FieldError message={errors.current_password} />
        <label htmlFor="pw-new">New password (at least 12 characters)</label>
        <input id="pw-new" type="password" autoComplete="new-password" required value={next} onChange={(e) => setNext(e.target.value)} />
        <FieldError message={errors.new_password} />
        <label htmlFor="pw-repeat">Repeat the new password</label>
        <input id="pw-repeat" type="password" autoComplete="new-password" required value={repeat} onChange={(e) => setRepeat(e.target.value)} />
        <FieldError message={errors.repeat} />
        <button type="submit" className="primary">Change password</button>
        <FieldError message={errors['']} />
        {done && (
          <p role="status" className="ok">
            Password changed. Your other sessions were signed out.
          </p>
        )}
      </form>
    </>
  )
}
