// What SDKs reported about one flag, per environment: evaluations per variant over time
// (hour or day buckets), when it was last evaluated, the applications and SDK versions
// reporting, and events their SDKs dropped. Refreshed every 30 s, so what the page shows
// is at most a minute behind the SDKs (they flush every ~10 s).
import { useEffect, useMemo } from 'react'
import { Link, useParams, useSearchParams } from 'react-router'
import { api, call } from '../api/client'
import { ErrorState, Loading } from '../components/common'
import { InsightsChart } from '../components/InsightsChart'
import { ago, appLabel, chartData, totalEvaluations, type Granularity } from '../insights/shape'
import { useAsync } from '../stores/useAsync'
import '../insights/insights.css'

const REFRESH_MS = 30_000

export function FlagInsights() {
  const { project = '', flag = '' } = useParams()
  const [search, setSearch] = useSearchParams()
  const envs = useAsync(
    () => call(api.GET('/api/v1/projects/{project}/environments', { params: { path: { project } } })),
    [project],
  )
  const envList = envs.data ?? []
  // The environment people most often ask about first: a critical one (production).
  const envKey = search.get('env') ?? (envList.find((e) => e.critical) ?? envList[0])?.key
  const granularity: Granularity = search.get('granularity') === 'day' ? 'day' : 'hour'
  const choose = (env: string, g: Granularity) => setSearch({ env, granularity: g }, { replace: true })

  const insights = useAsync(async () => {
    if (!envKey) return undefined
    return call(
      api.GET('/api/v1/projects/{project}/flags/{flag}/insights', {
        params: { path: { project, flag }, query: { environment: envKey, granularity } },
      }),
    )
  }, [project, flag, envKey, granularity])
  const { reload } = insights
  useEffect(() => {
    const timer = setInterval(() => void reload(), REFRESH_MS)
    return () => clearInterval(timer)
  }, [reload])
  const data = useMemo(() => (insights.data ? chartData(insights.data) : undefined), [insights.data])

  if (envs.loading) return <Loading what="environments" />
  if (envs.error) return <ErrorState error={envs.error} retry={envs.reload} />
  const env = envList.find((e) => e.key === envKey)
  const now = Date.now()
  const i = insights.data
  return (
    <>
      <nav aria-label="Breadcrumb" className="crumbs">
        <Link to={`/p/${project}/flags`}>Flags</Link> / <Link to={`/p/${project}/flags/${flag}`}>{flag}</Link> /{' '}
        <span>Insights</span>
      </nav>
      <div className="page-head">
        <h1>Insights</h1>
        <span className="sub">
          <code>{flag}</code> · what SDKs reported
        </span>
      </div>
      <div role="tablist" aria-label="Environment" className="tabs">
        {envList.map((e) => (
          <button
            key={e.key}
            role="tab"
            type="button"
            aria-selected={e.key === envKey}
            className={e.key === envKey ? 'active' : ''}
            onClick={() => choose(e.key, granularity)}
          >
            {e.name || e.key}
          </button>
        ))}
      </div>
      <div className="insights-controls" role="group" aria-label="Granularity">
        {(['hour', 'day'] as const).map((g) => (
          <button key={g} type="button" aria-pressed={g === granularity} className={g === granularity ? 'primary' : ''} onClick={() => envKey && choose(envKey, g)}>
            {g === 'hour' ? 'Last 24 hours' : 'Last 30 days'}
          </button>
        ))}
      </div>
      {insights.loading && !i && <Loading what="insights" />}
      {!!insights.error && <ErrorState error={insights.error} retry={insights.reload} />}
      {i && data && (
        <section aria-label={`Insights in ${env?.name || envKey}`} className="insights" data-granularity={i.granularity} data-env={i.environment}>
          {i.dropped > 0 && (
            <p className="state error" role="alert" data-testid="dropped">
              SDKs in this environment dropped {i.dropped.toLocaleString('en')} exposures and events (their buffers were
              full): counts and experiment results may be incomplete.
            </p>
          )}
          <p>
            Last evaluated:{' '}
            <strong data-testid="last-evaluated">
              {i.last_evaluated != null ? (
                <time dateTime={new Date(i.last_evaluated).toISOString()} title={new Date(i.last_evaluated).toLocaleString()}>
                  {ago(i.last_evaluated, now)}
                </time>
              ) : (
                'never'
              )}
            </strong>{' '}
            · {totalEvaluations(i).toLocaleString('en')} evaluations in the range
          </p>
          {data.series.length ? (
            <InsightsChart
              data={data}
              granularity={i.granularity}
              title={`Evaluations per variant per ${i.granularity}`}
            />
          ) : (
            <p className="state empty">No evaluations reported in this range.</p>
          )}
          {data.series.length > 0 && (
            <div className="table-wrap">
              <table aria-label="Evaluations per variant" data-testid="variant-totals">
                <thead>
                  <tr>
                    <th scope="col">Variant</th>
                    <th scope="col">Evaluations</th>
                  </tr>
                </thead>
                <tbody>
                  {data.series.map((s) => (
                    <tr key={s.variant} data-variant={s.variant}>
                      <th scope="row">{s.label}</th>
                      <td>{s.total.toLocaleString('en')}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          <h2>Applications reporting to {env?.name || envKey}</h2>
          {i.apps.length ? (
            <div className="table-wrap">
              <table aria-label="Connected applications" data-testid="apps">
                <thead>
                  <tr>
                    <th scope="col">Application</th>
                    <th scope="col">SDK</th>
                    <th scope="col">Evaluations (all flags)</th>
                    <th scope="col">Dropped</th>
                    <th scope="col">Last seen</th>
                  </tr>
                </thead>
                <tbody>
                  {i.apps.map((a) => (
                    <tr key={`${a.app}\u0000${a.app_version}\u0000${a.sdk}`} data-app={a.app}>
                      <th scope="row">{appLabel(a)}</th>
                      <td>
                        <code>{a.sdk}</code>
                      </td>
                      <td>{a.evaluations.toLocaleString('en')}</td>
                      <td>{a.dropped.toLocaleString('en')}</td>
                      <td>
                        <time dateTime={new Date(a.last_seen).toISOString()} title={new Date(a.last_seen).toLocaleString()}>
                          {ago(a.last_seen, now)}
                        </time>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          ) : (
            <p className="state empty">No SDK has reported to this environment yet.</p>
          )}
        </section>
      )}
    </>
  )
}
