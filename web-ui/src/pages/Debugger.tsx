// The evaluation debugger: a context in, every flag's (or one flag's) value, variant,
// reason and matching rule out, evaluated by the server through flagpole-core.
import { useState } from 'react'
import type { FormEvent } from 'react'
import { useParams } from 'react-router'
import { api, call, fieldErrors, messageOf, type DebugResult } from '../api/client'
import { Empty, ErrorState, FieldError, Loading } from '../components/common'
import { useAsync } from '../stores/useAsync'

function reasonText(r: DebugResult): string {
  switch (r.reason) {
    case 'RULE_MATCH':
      return `Rule ${(r.rule_index ?? 0) + 1}${r.rule_id ? ` (${r.rule_id})` : ''} matched${r.in_rollout ? ', rollout bucket decided' : ''}`
    case 'FALLTHROUGH':
      return `No rule matched: default${r.in_rollout ? ' rollout' : ''}`
    case 'TARGET_MATCH':
      return 'Individually targeted'
    case 'OFF':
      return 'Flag is off in this environment'
    case 'PREREQUISITE_FAILED':
      return `Prerequisite ${r.prerequisite} not met`
    case 'ERROR':
      return `Error: ${r.error}`
    default:
      return r.reason
  }
}

export function Debugger() {
  const { project = '' } = useParams()
  const envs = useAsync(
    () => call(api.GET('/api/v1/projects/{project}/environments', { params: { path: { project } } })),
    [project],
  )
  const flags = useAsync(
    () => call(api.GET('/api/v1/projects/{project}/flags', { params: { path: { project }, query: { limit: 200 } } })),
    [project],
  )
  const [env, setEnv] = useState('')
  const [flag, setFlag] = useState('')
  const [key, setKey] = useState('user-1')
  const [attrs, setAttrs] = useState('{\n  "plan": "pro"\n}')
  const [result, setResult] = useState<{ version: number; results: DebugResult[] }>()
  const [errors, setErrors] = useState<Record<string, string>>({})
  const [error, setError] = useState<string>()
  const [busy, setBusy] = useState(false)

  if (envs.error) return <ErrorState error={envs.error} retry={envs.reload} />
  if (!envs.data) return <Loading what="environments" />
  const envKey = env || envs.data[0]?.key || ''

  const run = async (e: FormEvent) => {
    e.preventDefault()
    setErrors({})
    setError(undefined)
    let attributes: Record<string, unknown>
    try {
      attributes = attrs.trim() ? JSON.parse(attrs) : {}
      if (typeof attributes !== 'object' || Array.isArray(attributes) || attributes === null) throw new Error('not an object')
    } catch {
      setErrors({ attributes: 'Attributes must be a JSON object, e.g. {"plan": "pro"}.' })
      return
    }
    setBusy(true)
    try {
      const r = await call(
        api.POST('/api/v1/projects/{project}/environments/{env}/evaluate', {
          params: { path: { project, env: envKey } },
          body: { key, attributes: attributes as never, flag: flag || undefined },
        }),
      )
      setResult(r)
    } catch (err) {
      setErrors(fieldErrors(err))
      setError(messageOf(err))
    } finally {
      setBusy(false)
    }
  }

  return (
    <>
      <h1>Evaluation debugger</h1>
      <form className="debugger" onSubmit={run} aria-label="Evaluate">
        <label htmlFor="dbg-env">Environment</label>
        <select id="dbg-env" value={envKey} onChange={(e) => setEnv(e.target.value)}>
          {envs.data.map((e) => (
            <option key={e.key} value={e.key}>
              {e.name || e.key}
            </option>
          ))}
        </select>
        <label htmlFor="dbg-flag">Flag</label>
        <select id="dbg-flag" value={flag} onChange={(e) => setFlag(e.target.value)}>
          <option value="">All flags</option>
          {(flags.data?.items ?? []).map((f) => (
            <option key={f.key} value={f.key}>
              {f.key}
            </option>
          ))}
        </select>
        <label htmlFor="dbg-key">Targeting key</label>
        <input id="dbg-key" value={key} onChange={(e) => setKey(e.target.value)} />
        <FieldError message={errors.key} />
        <label htmlFor="dbg-attrs">Attributes (JSON object)</label>
        <textarea id="dbg-attrs" rows={6} value={attrs} onChange={(e) => setAttrs(e.target.value)} aria-invalid={!!errors.attributes} />
        <FieldError message={errors.attributes} />
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Evaluating…' : 'Evaluate'}
        </button>
        {error && !Object.keys(errors).length && <p className="field-error" role="alert">{error}</p>}
      </form>
      {result &&
        (result.results.length === 0 ? (
          <Empty>This environment has no flags.</Empty>
        ) : (
          <div className="table-wrap">
            <table className="results" aria-label="Evaluation results">
              <caption>
                {envKey} at data version {result.version}
              </caption>
              <thead>
                <tr>
                  <th scope="col">Flag</th>
                  <th scope="col">Value</th>
                  <th scope="col">Variant</th>
                  <th scope="col">Reason</th>
                  <th scope="col">Why</th>
                </tr>
              </thead>
              <tbody>
                {result.results.map((r) => (
                  <tr key={r.flag} data-result={r.flag}>
                    <th scope="row">{r.flag}</th>
                    <td><code>{r.value === undefined || r.value === null ? '—' : JSON.stringify(r.value)}</code></td>
                    <td>{r.variant ?? '—'}</td>
                    <td><span className="badge">{r.reason}</span></td>
                    <td>{reasonText(r)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ))}
    </>
  )
}
