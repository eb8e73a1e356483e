// Segments: reusable audiences (included keys, excluded keys, rules) referenced by
// `in_segment` clauses.
import { useState } from 'react'
import type { FormEvent } from 'react'
import { useParams } from 'react-router'
import { api, call, errorsUnder, fieldErrors, messageOf, type SegmentView } from '../api/client'
import type { Clause } from '../api/model'
import { ClauseBuilder } from '../components/ClauseBuilder'
import { Empty, ErrorState, FieldError, Loading } from '../components/common'
import { useLive } from '../stores/live'
import { useSession } from '../stores/session'
import { useAsync } from '../stores/useAsync'

const split = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean)

export function Segments() {
  const { project = '' } = useParams()
  const { canWrite } = useSession()
  const writable = canWrite(project)
  const list = useAsync(
    () => call(api.GET('/api/v1/projects/{project}/segments', { params: { path: { project } } })),
    [project],
  )
  useLive(project, () => void list.reload())
  const [editing, setEditing] = useState<SegmentView | 'new'>()
  return (
    <>
      <div className="page-head">
        <h1>Segments</h1>
        {writable && !editing && (
          <button type="button" className="primary" onClick={() => setEditing('new')}>
            New segment
          </button>
        )}
      </div>
      {editing && (
        <SegmentForm
          project={project}
          segment={editing === 'new' ? undefined : editing}
          readOnly={!writable}
          onDone={() => {
            setEditing(undefined)
            void list.reload()
          }}
        />
      )}
      {list.error ? (
        <ErrorState error={list.error} retry={list.reload} />
      ) : !list.data ? (
        <Loading what="segments" />
      ) : list.data.length === 0 ? (
        <Empty>No segments yet. A segment is a named audience that rules can target.</Empty>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">Segment</th>
              <th scope="col">Included</th>
              <th scope="col">Excluded</th>
              <th scope="col">Rules</th>
              <th scope="col">Used by</th>
              <th scope="col"><span className="sr-only">Actions</span></th>
            </tr>
          </thead>
          <tbody>
            {list.data.map((s) => (
              <tr key={s.key}>
                <th scope="row">
                  {s.name || s.key} <code>{s.key}</code>
                </th>
                <td>{s.included.length}</td>
                <td>{s.excluded.length}</td>
                <td>{s.rules.length}</td>
                <td data-testid={`used-by-${s.key}`}>
                  {s.used_by_flags === 0 ? 'no flags' : s.used_by_flags === 1 ? '1 flag' : `${s.used_by_flags} flags`}
                </td>
                <td>
                  <button type="button" onClick={() => setEditing(s)}>
                    {writable ? 'Edit' : 'View'}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  )
}

interface SegRule {
  id: string
  clauses: Clause[]
}

function SegmentForm({
  project,
  segment,
  readOnly,
  onDone,
}: {
  project: string
  segment?: SegmentView
  readOnly: boolean
  onDone: () => void
}) {
  const [key, setKey] = useState(segment?.key ?? '')
  const [name, setName] = useState(segment?.name ?? '')
  const [included, setIncluded] = useState((segment?.included ?? []).join(', '))
  const [excluded, setExcluded] = useState((segment?.excluded ?? []).join(', '))
  const [rules, setRules] = useState<SegRule[]>((segment?.rules as unknown as SegRule[]) ?? [])
  const [errors, setErrors] = useState<Record<string, string>>({})
  const [error, setError] = useState<string>()
  const submit = async (e: FormEvent) => {
    e.preventDefault()
    setErrors({})
    setError(undefined)
    const body = {
      name,
      included: split(included),
      excluded: split(excluded),
      rules: rules as never,
    }
    try {
      if (segment) {
        await call(
          api.PUT('/api/v1/projects/{project}/segments/{segment}', {
            params: { path: { project, segment: segment.key } },
            body: { ...body, version: segment.version },
          }),
        )
      } else {
        await call(api.POST('/api/v1/projects/{project}/segments', { params: { path: { project } }, body: { ...body, key } }))
      }
      onDone()
    } catch (err) {
      setErrors(fieldErrors(err))
      setError(messageOf(err))
    }
  }
  const remove = async () => {
    if (!segment) return
    try {
      await call(
        api.DELETE('/api/v1/projects/{project}/segments/{segment}', {
          params: { path: { project, segment: segment.key } },
          body: { version: segment.version },
        }),
      )
      onDone()
    } catch (err) {
      setError(messageOf(err))
    }
  }
  return (
    <form className="card" onSubmit={submit} aria-label={segment ? `Segment ${segment.key}` : 'New segment'}>
      {!segment && (
        <>
          <label htmlFor="seg-key">Key</label>
          <input id="seg-key" required value={key} onChange={(e) => setKey(e.target.value)} />
          <FieldError message={errors.key} />
        </>
      )}
      <label htmlFor="seg-name">Name</label>
      <input id="seg-name" value={name} disabled={readOnly} onChange={(e) => setName(e.target.value)} />
      <label htmlFor="seg-inc">Included keys</label>
      <input id="seg-inc" value={included} disabled={readOnly} onChange={(e) => setIncluded(e.target.value)} />
      <FieldError message={errors.included ?? Object.entries(errors).find(([k]) => k.startsWith('included'))?.[1]} />
      <label htmlFor="seg-exc">Excluded keys</label>
      <input id="seg-exc" value={excluded} disabled={readOnly} onChange={(e) => setExcluded(e.target.value)} />
      <h3>Rules (any rule matching includes the context)</h3>
      {rules.map((r, i) => (
        <div key={i} className="rule">
          {r.clauses.map((c, j) => (
            <ClauseBuilder
              key={j}
              label={`Segment rule ${i + 1} condition ${j + 1}`}
              clause={c}
              segments={[]}
              readOnly={readOnly}
              errors={errorsUnder(errors, `rules[${i}].clauses[${j}]`)}
              onChange={(nc) => {
                const next = rules.slice()
                next[i] = { ...r, clauses: r.clauses.map((x, k) => (k === j ? nc : x)) }
                setRules(next)
              }}
              onRemove={() => {
                const next = rules.slice()
                next[i] = { ...r, clauses: r.clauses.filter((_, k) => k !== j) }
                setRules(next)
              }}
            />
          ))}
          {!readOnly && (
            <button type="button" onClick={() => setRules(rules.filter((_, k) => k !== i))}>
              Delete rule {i + 1}
            </button>
          )}
        </div>
      ))}
      {!readOnly && (
        <button type="button" onClick={() => setRules([...rules, { id: `r${rules.length + 1}`, clauses: [{ attribute: '', op: 'in', values: [] }] }])}>
          Add rule
        </button>
      )}
      {error && <p className="field-error" role="alert">{error}</p>}
      <div className="actions">
        {!readOnly && <button type="submit" className="primary">Save segment</button>}
        {!readOnly && segment && <button type="button" className="danger" onClick={() => void remove()}>Delete segment</button>}
        <button type="button" onClick={onDone}>Close</button>
      </div>
    </form>
  )
}
