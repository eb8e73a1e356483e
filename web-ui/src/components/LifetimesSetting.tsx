// The project's expected flag lifetimes per type, on the environments page with the other
// project settings: admins edit them, everyone else reads them. Past its type's lifetime a
// flag is listed as potentially stale.
import { useEffect, useState } from 'react'
import type { FormEvent } from 'react'
import { api, call, fieldErrors, messageOf } from '../api/client'
import { FLAG_TYPES, lifetimeText, lifetimeTexts, lifetimesBody, type FlagType, type Lifetimes } from '../api/lifecycle'
import { ErrorState, FieldError, Loading } from './common'
import { useAsync } from '../stores/useAsync'

export function LifetimesSetting({
  project,
  admin,
  version,
  onSaved,
}: {
  project: string
  admin: boolean
  /** The project's version as the page knows it (other settings bump it too). */
  version?: number
  onSaved: () => void
}) {
  const settings = useAsync(
    () => call(api.GET('/api/v1/projects/{project}/lifecycle', { params: { path: { project } } })),
    [project],
  )
  const [texts, setTexts] = useState<Record<FlagType, string>>()
  const [errors, setErrors] = useState<Record<string, string>>({})
  const [message, setMessage] = useState<string>()
  const [failed, setFailed] = useState(false)
  const stored = settings.data?.lifetimes as Lifetimes | undefined
  useEffect(() => {
    if (stored) setTexts(lifetimeTexts(stored))
  }, [stored])
  if (settings.error) return <ErrorState error={settings.error} retry={settings.reload} />
  if (!settings.data || !texts) return <Loading what="flag lifetimes" />
  const defaults = settings.data.defaults as Lifetimes

  const save = async (e: FormEvent) => {
    e.preventDefault()
    setMessage(undefined)
    setFailed(false)
    const body = lifetimesBody(texts)
    if ('errors' in body) {
      setErrors(body.errors)
      return
    }
    setErrors({})
    try {
      const saved = await call(
        api.PUT('/api/v1/projects/{project}/lifecycle', {
          params: { path: { project } },
          body: { lifetimes: body.lifetimes, version: version ?? settings.data?.version, comment: 'Changed in the dashboard' },
        }),
      )
      settings.setData(saved)
      onSaved()
      setMessage('Lifetimes saved.')
    } catch (err) {
      setErrors(fieldErrors(err))
      setMessage(messageOf(err))
      setFailed(true)
    }
  }
  return (
    <form className="card" aria-labelledby="lifetimes-h" onSubmit={save}>
      <h2 id="lifetimes-h">Flag lifetimes</h2>
      <p className="hint">
        How long each type of flag is expected to live. Past it, a flag is listed as potentially stale (unless it is marked
        permanent). Empty: never expires.
      </p>
      <div className="lifetimes">
        {FLAG_TYPES.map((t) => (
          <div key={t.value} style={{ display: 'contents' }}>
            <label htmlFor={`lifetime-${t.value}`}>{t.label}</label>
            <input
              id={`lifetime-${t.value}`}
              inputMode="numeric"
              value={texts[t.value]}
              placeholder="never"
              disabled={!admin}
              aria-invalid={!!errors[`lifetimes.${t.value}`]}
              aria-describedby={`lifetime-${t.value}-hint`}
              onChange={(e) => setTexts({ ...texts, [t.value]: e.target.value })}
            />
            <span id={`lifetime-${t.value}-hint`} className="hint">
              days (default: {lifetimeText(defaults[t.value])})
              <FieldError message={errors[`lifetimes.${t.value}`]} />
            </span>
          </div>
        ))}
      </div>
      {admin && (
        <div className="actions">
          <button type="submit" className="primary">
            Save lifetimes
          </button>
          {message && (
            <span role="status" className={failed ? 'field-error' : 'ok'}>
              {message}
            </span>
          )}
        </div>
      )}
    </form>
  )
}
