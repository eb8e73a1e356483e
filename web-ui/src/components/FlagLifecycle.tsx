// A flag's lifecycle on its page: whether it is potentially stale and why, its type and
// its permanent mark (writers change both; neither changes what any environment serves,
// so no review).
import { useEffect, useState } from 'react'
import { api, call, fieldErrors, messageOf, type FlagDetail } from '../api/client'
import { FLAG_TYPES, typeLabel, type FlagType } from '../api/lifecycle'
import { FieldError } from './common'

export function FlagLifecycle({
  project,
  flag,
  writable,
  onSaved,
}: {
  project: string
  flag: FlagDetail
  writable: boolean
  onSaved: (f: FlagDetail) => void
}) {
  const [type, setType] = useState(flag.type as FlagType)
  const [permanent, setPermanent] = useState(flag.permanent)
  const [errors, setErrors] = useState<Record<string, string>>({})
  const [message, setMessage] = useState<string>()
  const [failed, setFailed] = useState(false)
  // What is stored changes under the form (a save, a live update): follow it.
  useEffect(() => {
    setType(flag.type as FlagType)
    setPermanent(flag.permanent)
  }, [flag.type, flag.permanent])
  const dirty = type !== flag.type || permanent !== flag.permanent
  const save = async () => {
    setErrors({})
    setMessage(undefined)
    setFailed(false)
    try {
      const saved = await call(
        api.PATCH('/api/v1/projects/{project}/flags/{flag}', {
          params: { path: { project, flag: flag.key } },
          body: { type, permanent, version: flag.version, comment: 'Lifecycle changed in the dashboard' },
        }),
      )
      onSaved(saved)
      setMessage('Lifecycle saved.')
    } catch (e) {
      setErrors(fieldErrors(e))
      setMessage(messageOf(e))
      setFailed(true)
    }
  }
  const { stale, reasons } = flag.lifecycle
  return (
    <section aria-labelledby="lifecycle-h" className="lifecycle">
      <h2 id="lifecycle-h">
        Lifecycle{' '}
        {stale ? (
          <span className="badge stale" data-testid="stale-badge">
            Potentially stale
          </span>
        ) : (
          <span className="badge on">{flag.permanent ? 'permanent' : 'active'}</span>
        )}
      </h2>
      {stale && (
        <ul className="reasons" aria-label="Why it is potentially stale">
          {reasons.map((r) => (
            <li key={r.code}>{r.message}</li>
          ))}
        </ul>
      )}
      {writable ? (
        <div className="row">
          <label htmlFor="flag-type">Type</label>
          <select id="flag-type" value={type} onChange={(e) => setType(e.target.value as FlagType)}>
            {FLAG_TYPES.map((t) => (
              <option key={t.value} value={t.value}>
                {t.label}
              </option>
            ))}
          </select>
          <FieldError message={errors.type} />
          <label className="check">
            <input type="checkbox" checked={permanent} onChange={(e) => setPermanent(e.target.checked)} /> Permanent: never
            listed as potentially stale
          </label>
          <button type="button" className="primary" disabled={!dirty} onClick={() => void save()}>
            Save lifecycle
          </button>
          {message && (
            <span role="status" className={failed ? 'field-error' : 'ok'}>
              {message}
            </span>
          )}
        </div>
      ) : (
        <p className="sub">
          {typeLabel(flag.type)}
          {flag.permanent && ' · permanent'}
        </p>
      )}
    </section>
  )
}
