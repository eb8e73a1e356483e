// Scheduled changes of a project (issue 17): what is waiting, what was applied, and what
// needs a person: a conflict (the flag changed after the change was scheduled) is rebased
// on the flag's current version or cancelled. Times are shown in the viewer's zone; the
// server stores UTC. `ScheduledList` is also the flag page's list.
import { useEffect, useState } from 'react'
import { Link, useParams } from 'react-router'
import { api, call, messageOf } from '../api/client'
import { type ScheduledChange, type ScheduledState, canCancel, canRebase, changeWords, showTime } from '../api/schedule'
import { Empty, ErrorState, Loading } from '../components/common'
import { useLive } from '../stores/live'
import { useSession } from '../stores/session'
import { useAsync } from '../stores/useAsync'

/** How often the list is fetched again while open. */
const REFRESH_MS = 5_000

const STATES: ScheduledState[] = ['scheduled', 'conflict', 'failed', 'applied', 'cancelled']

export function Scheduled() {
  const { project = '' } = useParams()
  const [state, setState] = useState<ScheduledState | ''>('')
  const list = useAsync(
    () =>
      call(
        api.GET('/api/v1/projects/{project}/scheduled-changes', {
          params: { path: { project }, query: state ? { state } : {} },
        }),
      ),
    [project, state],
  )
  useLive(project, () => void list.reload())
  // A change that turns into a conflict or fails changes no flag, so no live event says
  // so: look again every few seconds while the page is open.
  const { reload } = list
  useEffect(() => {
    const every = window.setInterval(() => void reload(), REFRESH_MS)
    return () => window.clearInterval(every)
  }, [reload])
  return (
    <>
      <h1>Scheduled changes</h1>
      <p className="hint">
        Changes applied by the server at their time, as <code>system:scheduler</code>. A flag changed after a change was
        scheduled is not overwritten: the change waits as a conflict for you to rebase or cancel.
      </p>
      <label>
        State{' '}
        <select aria-label="State" value={state} onChange={(e) => setState(e.target.value as ScheduledState | '')}>
          <option value="">All</option>
          {STATES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      </label>
      {list.error ? (
        <ErrorState error={list.error} retry={list.reload} />
      ) : !list.data ? (
        <Loading what="scheduled changes" />
      ) : (
        <ScheduledList project={project} changes={list.data} onChanged={() => void list.reload()} showFlag />
      )}
    </>
  )
}

/** A table of scheduled changes with cancel and rebase for writers. */
export function ScheduledList({
  project,
  changes,
  onChanged,
  showFlag,
}: {
  project: string
  changes: ScheduledChange[]
  onChanged: () => void
  showFlag?: boolean
}) {
  const { canWrite } = useSession()
  const writable = canWrite(project)
  const [error, setError] = useState<string>()
  if (changes.length === 0) return <Empty>No scheduled changes.</Empty>
  const act = async (c: ScheduledChange, action: 'cancel' | 'rebase') => {
    setError(undefined)
    try {
      const path = { project, change: c.id }
      if (action === 'cancel')
        await call(api.POST('/api/v1/projects/{project}/scheduled-changes/{change}/cancel', { params: { path } }))
      else await call(api.POST('/api/v1/projects/{project}/scheduled-changes/{change}/rebase', { params: { path } }))
      onChanged()
    } catch (e) {
      setError(messageOf(e))
    }
  }
  return (
    <>
      <table aria-label="Scheduled changes">
        <thead>
          <tr>
            <th scope="col">When</th>
            {showFlag && <th scope="col">Flag</th>}
            <th scope="col">Environment</th>
            <th scope="col">Change</th>
            <th scope="col">State</th>
            <th scope="col">Scheduled by</th>
            {writable && (
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            )}
          </tr>
        </thead>
        <tbody>
          {changes.map((c) => (
            <tr key={c.id} data-testid={`scheduled-${c.id}`}>
              <td title={c.at}>{showTime(c.at)}</td>
              {showFlag && (
                <td>
                  <Link to={`/p/${project}/flags/${c.flag}`}>{c.flag}</Link>
                </td>
              )}
              <td>{c.environment}</td>
              <td>
                {changeWords(c.change)}
                {c.comment && <div className="hint">{c.comment}</div>}
              </td>
              <td>
                <span className={`badge ${c.state}`}>{c.state}</span>
                {c.error && <div className="hint">{c.error}</div>}
                {c.applied_at && <div className="hint">applied {showTime(c.applied_at)}</div>}
              </td>
              <td>{c.scheduled_by}</td>
              {writable && (
                <td className="actions">
                  {canRebase(c.state) && (
                    <button type="button" onClick={() => void act(c, 'rebase')}>
                      Rebase
                    </button>
                  )}
                  {canCancel(c.state) && (
                    <button type="button" onClick={() => void act(c, 'cancel')}>
                      Cancel
                    </button>
                  )}
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      {error && (
        <p role="alert" className="field-error">
          {error}
        </p>
      )}
    </>
  )
}
