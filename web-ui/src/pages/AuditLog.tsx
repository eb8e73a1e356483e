// The audit log of a project: who did what, when, in words, with the change as a readable
// diff. Filters (environment, action, dates, flag, actor) are the API's query parameters,
// so the server does the filtering and a page is always full.
import { useState } from 'react'
import { Link, useParams } from 'react-router'
import { ACTION_CHOICES, actionWords, dayStart } from '../api/auditWords'
import { api, call } from '../api/client'
import { DiffView } from '../components/DiffView'
import { Empty, ErrorState, Loading, formatTime } from '../components/common'
import { useLive } from '../stores/live'
import { useAsync } from '../stores/useAsync'

const PAGE = 50

interface AuditFilters {
  environment: string
  action: string
  from: string
  to: string
  flag: string
  actor: string
}

const NONE: AuditFilters = { environment: '', action: '', from: '', to: '', flag: '', actor: '' }

export function AuditLog() {
  const { project = '' } = useParams()
  const [filters, setFilters] = useState<AuditFilters>(NONE)
  const [offset, setOffset] = useState(0)
  const set = (patch: Partial<AuditFilters>) => {
    setFilters((f) => ({ ...f, ...patch }))
    setOffset(0)
  }
  const envs = useAsync(
    () => call(api.GET('/api/v1/projects/{project}/environments', { params: { path: { project } } })),
    [project],
  )
  const page = useAsync(
    () =>
      call(
        api.GET('/api/v1/audit', {
          params: {
            query: {
              project,
              environment: filters.environment || undefined,
              action: filters.action || undefined,
              from: dayStart(filters.from),
              to: dayStart(filters.to, true),
              flag: filters.flag || undefined,
              actor: filters.actor || undefined,
              limit: PAGE,
              offset,
            },
          },
        }),
      ),
    [project, filters, offset],
  )
  useLive(project, () => void page.reload())
  const [open, setOpen] = useState<number>()
  const filtered = Object.values(filters).some(Boolean)
  return (
    <>
      <h1>Audit log</h1>
      <div className="filters" role="search">
        <label htmlFor="audit-env">Environment</label>
        <select id="audit-env" value={filters.environment} onChange={(e) => set({ environment: e.target.value })}>
          <option value="">All environments</option>
          {(envs.data ?? []).map((e) => (
            <option key={e.key} value={e.key}>
              {e.name || e.key}
            </option>
          ))}
        </select>
        <label htmlFor="audit-action">Action</label>
        <select id="audit-action" value={filters.action} onChange={(e) => set({ action: e.target.value })}>
          {ACTION_CHOICES.map((c) => (
            <option key={c.value} value={c.value}>
              {c.label}
            </option>
          ))}
        </select>
        <label htmlFor="audit-from">From</label>
        <input id="audit-from" type="date" value={filters.from} onChange={(e) => set({ from: e.target.value })} />
        <label htmlFor="audit-to">To</label>
        <input id="audit-to" type="date" value={filters.to} min={filters.from || undefined} onChange={(e) => set({ to: e.target.value })} />
        <label htmlFor="audit-flag">Flag key</label>
        <input id="audit-flag" value={filters.flag} onChange={(e) => set({ flag: e.target.value })} />
        <label htmlFor="audit-actor">Actor</label>
        <input id="audit-actor" value={filters.actor} placeholder="user:alice@example.com" onChange={(e) => set({ actor: e.target.value })} />
        {filtered && (
          <button type="button" className="link" onClick={() => set(NONE)}>
            Clear filters
          </button>
        )}
      </div>
      {page.error ? (
        <ErrorState error={page.error} retry={page.reload} />
      ) : !page.data ? (
        <Loading what="audit log" />
      ) : page.data.items.length === 0 ? (
        <Empty>No audit entries{filtered ? ' match these filters' : ' yet'}.</Empty>
      ) : (
        <ol className="audit">
          {page.data.items.map((e) => (
            <li key={e.id} data-audit={e.id} data-action={e.action}>
              <div className="row">
                <time>{formatTime(e.at)}</time>
                <span className="actor">{e.actor}</span>
                <span className="words">
                  {actionWords(e)}{' '}
                  {e.resource_type === 'flag' ? (
                    <Link to={`/p/${project}/flags/${e.resource_key}`}>{e.resource_key}</Link>
                  ) : (
                    <code>{e.resource_key}</code>
                  )}
                  {e.environment && <> in <strong>{e.environment}</strong></>}
                </span>
                <code className="action badge" title="The action, as the API's `action` filter names it">
                  {e.action}
                </code>
                {e.comment && <em>“{e.comment}”</em>}
                {(e.before != null || e.after != null) && (
                  <button type="button" className="link" aria-expanded={open === e.id} onClick={() => setOpen(open === e.id ? undefined : e.id)}>
                    {open === e.id ? 'Hide changes' : 'Show changes'}
                  </button>
                )}
              </div>
              {open === e.id && <DiffView before={e.before} after={e.after} />}
            </li>
          ))}
        </ol>
      )}
      <div className="pager">
        <button type="button" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>
          Newer
        </button>
        <button type="button" disabled={(page.data?.items.length ?? 0) < PAGE} onClick={() => setOffset(offset + PAGE)}>
          Older
        </button>
      </div>
    </>
  )
}
