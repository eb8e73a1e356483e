// Alerts of a project: which Prometheus Alertmanager alert turns which flag off in which
// environment, when each mapping last fired and what it did; writers create and delete
// mappings. How to point Alertmanager at the project's webhook (docs/alerts.md).
import { useState } from 'react'
import type { FormEvent } from 'react'
import { Link, useParams } from 'react-router'
import {
  MATCH_OPS,
  type AlertMapping,
  type LabelMatcher,
  type LabelMatchOp,
  matcherText,
  matchersToSend,
  outcomeWords,
  receiverSnippet,
  webhookUrl,
} from '../api/alerts'
import { api, call, fieldErrors, messageOf } from '../api/client'
import { ConfirmDialog, Empty, ErrorState, FieldError, Loading, formatTime } from '../components/common'
import { useLive } from '../stores/live'
import { useSession } from '../stores/session'
import { useAsync } from '../stores/useAsync'

export function Alerts() {
  const { project = '' } = useParams()
  const { canWrite } = useSession()
  const writable = canWrite(project)
  const list = useAsync(
    () => call(api.GET('/api/v1/projects/{project}/alert-mappings', { params: { path: { project } } })),
    [project],
  )
  // A mapping that fires changes a flag, which moves an environment to a new version.
  useLive(project, () => void list.reload())
  const [removing, setRemoving] = useState<AlertMapping>()
  const [error, setError] = useState<string>()
  return (
    <>
      <h1>Alerts</h1>
      <p className="hint">
        When a Prometheus Alertmanager alert fires, Flagpole can turn a flag off: a kill switch nobody has to be awake
        for. Each firing acts once; a resolved alert does nothing, turning the flag back on is yours to decide.
      </p>
      {list.error ? (
        <ErrorState error={list.error} retry={list.reload} />
      ) : !list.data ? (
        <Loading what="alert mappings" />
      ) : list.data.length === 0 ? (
        <Empty>No alert mappings yet. Add one below to let an alert turn a flag off.</Empty>
      ) : (
        <table aria-label="Alert mappings">
          <thead>
            <tr>
              <th scope="col">Alert</th>
              <th scope="col">Labels</th>
              <th scope="col">Action</th>
              <th scope="col">Last fired</th>
              {writable && (
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              )}
            </tr>
          </thead>
          <tbody>
            {list.data.map((m) => (
              <tr key={m.id} data-mapping={m.id}>
                <th scope="row">{m.alert}</th>
                <td>{m.matchers.length ? m.matchers.map((x) => <code key={matcherText(x)}>{matcherText(x)} </code>) : 'any'}</td>
                <td>
                  Turn <Link to={`/p/${encodeURIComponent(project)}/flags/${encodeURIComponent(m.action.flag)}`}>{m.action.flag}</Link>{' '}
                  off in <strong>{m.action.environment}</strong>
                </td>
                <td data-testid="last-fired">
                  <LastFired mapping={m} />
                </td>
                {writable && (
                  <td>
                    <button type="button" className="danger" onClick={() => setRemoving(m)}>
                      Delete
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {error && (
        <p className="field-error" role="alert">
          {error}
        </p>
      )}
      {writable && <NewMapping project={project} onCreated={() => void list.reload()} />}
      <Setup project={project} />
      {removing && (
        <ConfirmDialog
          title="Delete this alert mapping?"
          confirmLabel="Delete"
          danger
          onCancel={() => setRemoving(undefined)}
          onConfirm={async () => {
            const mapping = removing.id
            setRemoving(undefined)
            try {
              await call(
                api.DELETE('/api/v1/projects/{project}/alert-mappings/{mapping}', { params: { path: { project, mapping } } }),
              )
              setError(undefined)
            } catch (err) {
              setError(messageOf(err))
            }
            void list.reload()
          }}
        >
          <p>
            Alert <strong>{removing.alert}</strong> will no longer turn <strong>{removing.action.flag}</strong> off in{' '}
            <strong>{removing.action.environment}</strong>. What it did stays in the audit log.
          </p>
        </ConfirmDialog>
      )}
    </>
  )
}

function LastFired({ mapping }: { mapping: AlertMapping }) {
  const fired = mapping.last_fired
  if (!fired) return <>never</>
  const { words, badge } = outcomeWords(fired.outcome)
  const labels = Object.entries(fired.labels)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(', ')
  return (
    <>
      <span className={`badge ${badge}`}>{words}</span> {formatTime(fired.at)}
      <br />
      <span className="hint" title={`labels: ${labels}; firing since ${formatTime(fired.starts_at)}`}>
        {fired.message}
      </span>
    </>
  )
}

const NO_MATCHERS: LabelMatcher[] = []

function NewMapping({ project, onCreated }: { project: string; onCreated: () => void }) {
  const flags = useAsync(
    () => call(api.GET('/api/v1/projects/{project}/flags', { params: { path: { project }, query: { limit: 200 } } })),
    [project],
  )
  const envs = useAsync(
    () => call(api.GET('/api/v1/projects/{project}/environments', { params: { path: { project } } })),
    [project],
  )
  const [alert, setAlert] = useState('')
  const [matchers, setMatchers] = useState<LabelMatcher[]>(NO_MATCHERS)
  const [flag, setFlag] = useState('')
  const [environment, setEnvironment] = useState('')
  const [errors, setErrors] = useState<Record<string, string>>({})
  const envKey = environment || envs.data?.[envs.data.length - 1]?.key || ''
  const setRow = (i: number, change: Partial<LabelMatcher>) =>
    setMatchers(matchers.map((m, j) => (j === i ? { ...m, ...change } : m)))
  const submit = async (e: FormEvent) => {
    e.preventDefault()
    try {
      await call(
        api.POST('/api/v1/projects/{project}/alert-mappings', {
          params: { path: { project } },
          body: {
            alert,
            matchers: matchersToSend(matchers),
            action: { kind: 'flag_off', flag, environment: envKey },
          },
        }),
      )
      setAlert('')
      setMatchers(NO_MATCHERS)
      setFlag('')
      setErrors({})
      onCreated()
    } catch (err) {
      const f = fieldErrors(err)
      setErrors(Object.keys(f).length ? f : { alert: messageOf(err) })
    }
  }
  return (
    <form className="card" onSubmit={submit} aria-label="New alert mapping">
      <h2>New alert mapping</h2>
      <label htmlFor="am-alert">Alert name</label>
      <input
        id="am-alert"
        required
        value={alert}
        placeholder="CheckoutErrors"
        aria-describedby="am-alert-hint"
        onChange={(e) => setAlert(e.target.value)}
      />
      <span id="am-alert-hint" className="hint">
        The alert's <code>alertname</code>: the name of the Prometheus alerting rule.
      </span>
      <FieldError message={errors.alert} />
      <fieldset>
        <legend>Only when its labels match (all of them)</legend>
        {matchers.map((m, i) => (
          <div className="row" key={i} role="group" aria-label={`Matcher ${i + 1}`}>
            <input aria-label="Label" value={m.label} placeholder="service" onChange={(e) => setRow(i, { label: e.target.value })} />
            <select aria-label="Operator" value={m.op} onChange={(e) => setRow(i, { op: e.target.value as LabelMatchOp })}>
              {MATCH_OPS.map((o) => (
                <option key={o.value} value={o.value}>
                  {o.label}
                </option>
              ))}
            </select>
            <input aria-label="Value" value={m.value} placeholder="checkout" onChange={(e) => setRow(i, { value: e.target.value })} />
            <button type="button" onClick={() => setMatchers(matchers.filter((_, j) => j !== i))}>
              Remove
            </button>
            <FieldError message={errors[`matchers[${i}].label`] ?? errors[`matchers[${i}].value`]} />
          </div>
        ))}
        <button type="button" onClick={() => setMatchers([...matchers, { label: '', op: '=', value: '' }])}>
          Add matcher
        </button>
        <FieldError message={errors.matchers} />
      </fieldset>
      <label htmlFor="am-flag">Turn off flag</label>
      <input id="am-flag" required list="am-flags" value={flag} onChange={(e) => setFlag(e.target.value)} />
      <datalist id="am-flags">
        {(flags.data?.items ?? []).map((f) => (
          <option key={f.key} value={f.key}>
            {f.name}
          </option>
        ))}
      </datalist>
      <FieldError message={errors['action.flag']} />
      <label htmlFor="am-env">In environment</label>
      <select id="am-env" value={envKey} onChange={(e) => setEnvironment(e.target.value)}>
        {(envs.data ?? []).map((e) => (
          <option key={e.key} value={e.key}>
            {e.name || e.key}
            {e.critical ? ' (critical)' : ''}
          </option>
        ))}
      </select>
      <FieldError message={errors['action.environment']} />
      <button type="submit" className="primary">
        Create mapping
      </button>
    </form>
  )
}

/** How Alertmanager reaches this project. */
function Setup({ project }: { project: string }) {
  const origin = window.location.origin
  return (
    <section className="card" aria-labelledby="am-setup">
      <h2 id="am-setup">Connect Alertmanager</h2>
      <p>
        Alertmanager posts to <code data-testid="webhook-url">{webhookUrl(origin, project)}</code> with an API token of
        scope <code>alerts:trigger</code> and the writer role for this project (an administrator creates it under API
        tokens; it can do nothing else). Route the alerts with a label such as <code>flagpole_project="{project}"</code>{' '}
        and <code>continue: true</code>, so people are still told:
      </p>
      <pre>{receiverSnippet(origin, project)}</pre>
    </section>
  )
}
