// The evaluation debugger: a context in, every flag's (or one flag's) value, variant,
// reason and matching rule out, evaluated by the server through flagpole-core.
import { useState } from 'react'
import type { FormEvent } from 'react'
import { useParams } from 'react-router'
import { api, call, fieldErrors, messageOf, type DebugResult } from '../api/client'
import { allFlags } from '../api/flagList'
import { Empty, ErrorState, Field, Loading } from '../components/common'
import { useAsync } from '../stores/useAsync'

/** The reason in words. A rule is named by its position and description, not its id. */
export function reasonText(r: DebugResult): string {
  switch (r.reason) {
    case 'RULE_MATCH':
      return `Rule ${(r.rule_index ?? 0) + 1}${r.rule_description ? `, “${r.rule_description}”,` : ''} matched${r.in_rollout ? ', rollout bucket decided' : ''}`
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
    () => allFlags(project),
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
        <Field label="Environment" htmlFor="dbg-env">
          <select id="dbg-env" value={envKey} onChange={(e) => setEnv(e.target.value)}>
            {envs.data.map((e) => (
              <option key={e.key} value={e.key}>
                {e.name || e.key}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Flag" htmlFor="dbg-flag">
          <select id="dbg-flag" value={flag} onChange={(e) => setFlag(e.target.value)}>
            <option value="">All flags</option>
            {(flags.data ?? []).map((f) => (
              <option key={f.key} value={f.key}>
                {f.key}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Targeting key" htmlFor="dbg-key" error={errors.key}>
          <input id="dbg-key" value={key} onChange={(e) => setKey(e.target.value)} aria-invalid={!!errors.key} />
        </Field>
        <Field label="Attributes (JSON object)" htmlFor="dbg-attrs" error={errors.attributes}>
          <textarea id="dbg-attrs" rows={6} value={attrs} onChange={(e) => setAttrs(e.target.value)} aria-invalid={!!errors.attributes} />
        </Field>
        <div className="buttons">
          <button type="submit" className="primary" disabled={busy}>
            {busy ? 'Evaluating…' : 'Evaluate'}
          </button>
          {error && !Object.keys(errors).length && <p className="field-error" role="alert">{error}</p>}
        </div>
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
                    <td data-label="Value"><code>{r.value === undefined || r.value === null ? '—' : JSON.stringify(r.value)}</code></td>
                    <td data-label="Variant">{r.variant ?? '—'}</td>
                    <td data-label="Reason"><span className="badge">{r.reason}</span></td>
                    <td data-label="Why" className="why">{reasonText(r)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ))}
    </>
  )
}
