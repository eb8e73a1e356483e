// The audit log of a project: who did what, when, with the change as a readable diff.
import { useState } from 'react'
import { Link, useParams } from 'react-router'
import { api, call } from '../api/client'
import { DiffView } from '../components/DiffView'
import { Empty, ErrorState, Loading, formatTime } from '../components/common'
import { useLive } from '../stores/live'
import { useAsync } from '../stores/useAsync'

const PAGE = 50

export function AuditLog() {
  const { project = '' } = useParams()
  const [flag, setFlag] = useState('')
  const [actor, setActor] = useState('')
  const [offset, setOffset] = useState(0)
  const page = useAsync(
    () =>
      call(
        api.GET('/api/v1/audit', {
          params: { query: { project, flag: flag || undefined, actor: actor || undefined, limit: PAGE, offset } },
        }),
      ),
    [project, flag, actor, offset],
  )
  useLive(project, () => void page.reload())
  const [open, setOpen] = useState<number>()
  return (
    <>
      <h1>Audit log</h1>
      <div className="filters" role="search">
        <label htmlFor="audit-flag">Flag key</label>
        <input id="audit-flag" value={flag} onChange={(e) => { setFlag(e.target.value); setOffset(0) }} />
        <label htmlFor="audit-actor">Actor</label>
        <input id="audit-actor" value={actor} placeholder="user:alice@example.com" onChange={(e) => { setActor(e.target.value); setOffset(0) }} />
      </div>
      {page.error ? (
        <ErrorState error={page.error} retry={page.reload} />
      ) : !page.data ? (
        <Loading what="audit log" />
      ) : page.data.items.length === 0 ? (
        <Empty>No audit entries{flag || actor ? ' match these filters' : ' yet'}.</Empty>
      ) : (
        <ol className="audit">
          {page.data.items.map((e) => (
            <li key={e.id} data-audit={e.id}>
              <div className="row">
                <time>{formatTime(e.at)}</time>
                <span className="actor">{e.actor}</span>
                <span className="action badge">{e.action}</span>
                <span>
                  {e.resource_type}{' '}
                  {e.resource_type === 'flag' ? (
                    <Link to={`/p/${project}/flags/${e.resource_key}`}>{e.resource_key}</Link>
                  ) : (
                    <code>{e.resource_key}</code>
                  )}
                  {e.environment && <> in <strong>{e.environment}</strong></>}
                </span>
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
