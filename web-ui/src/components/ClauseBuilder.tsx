// One clause: attribute, operator (optionally negated) and values; segments are picked
// from the project's list for `in_segment`.
import { useId, useState } from 'react'
import {
  OPERATORS,
  formatValues,
  parseValues,
  takesValues,
  type Clause,
  type Operator,
} from '../api/model'
import { FieldError } from './common'

const OP_LABELS: Record<Operator, string> = {
  in: 'is one of',
  contains: 'contains',
  starts_with: 'starts with',
  ends_with: 'ends with',
  matches: 'matches regex',
  eq: '= (number)',
  lt: '< (number)',
  lte: '≤ (number)',
  gt: '> (number)',
  gte: '≥ (number)',
  semver_eq: 'version =',
  semver_lt: 'version <',
  semver_lte: 'version ≤',
  semver_gt: 'version >',
  semver_gte: 'version ≥',
  before: 'date before',
  after: 'date after',
  exists: 'exists',
  in_segment: 'is in segment',
}

export function ClauseBuilder({
  clause,
  onChange,
  onRemove,
  segments,
  errors,
  readOnly,
  label,
}: {
  clause: Clause
  onChange: (c: Clause) => void
  onRemove: () => void
  segments: { key: string; name: string }[]
  errors: Record<string, string>
  readOnly?: boolean
  label: string
}) {
  const id = useId()
  // The values are edited as text and parsed on every change; keeping the text avoids
  // eating a trailing comma while someone types.
  const [text, setText] = useState(formatValues(clause.values))
  const segment = clause.op === 'in_segment'
  const setOp = (op: Operator) => {
    const next: Clause = { ...clause, op }
    if (op === 'in_segment') next.attribute = ''
    if (!takesValues(op)) next.values = []
    else next.values = parseValues(op, text)
    onChange(next)
  }
  return (
    <fieldset className="clause" aria-label={label}>
      {!segment && (
        <span className="cell">
          <label htmlFor={`${id}-attr`}>Attribute</label>
          <input
            id={`${id}-attr`}
            value={clause.attribute}
            placeholder="key, plan, /address/city"
            onChange={(e) => onChange({ ...clause, attribute: e.target.value })}
            disabled={readOnly}
          />
          <FieldError message={errors['attribute']} />
        </span>
      )}
      <span className="cell">
        <label htmlFor={`${id}-neg`}>
          <input
            id={`${id}-neg`}
            type="checkbox"
            checked={!!clause.negate}
            onChange={(e) => onChange({ ...clause, negate: e.target.checked || undefined })}
            disabled={readOnly}
          />{' '}
          not
        </label>
      </span>
      <span className="cell">
        <label htmlFor={`${id}-op`}>Operator</label>
        <select
          id={`${id}-op`}
          value={clause.op}
          onChange={(e) => setOp(e.target.value as Operator)}
          disabled={readOnly}
        >
          {OPERATORS.map((op) => (
            <option key={op} value={op}>
              {OP_LABELS[op]}
            </option>
          ))}
        </select>
        <FieldError message={errors['op']} />
      </span>
      {segment ? (
        <span className="cell">
          <label htmlFor={`${id}-seg`}>Segments</label>
          <select
            id={`${id}-seg`}
            multiple
            value={clause.values.map(String)}
            onChange={(e) =>
              onChange({
                ...clause,
                values: Array.from(e.target.selectedOptions).map((o) => o.value),
              })
            }
            disabled={readOnly}
          >
            {segments.map((s) => (
              <option key={s.key} value={s.key}>
                {s.name || s.key}
              </option>
            ))}
          </select>
          {segments.length === 0 && <small>No segments in this project yet.</small>}
          <FieldError message={errors['values']} />
        </span>
      ) : (
        takesValues(clause.op) && (
          <span className="cell grow">
            <label htmlFor={`${id}-values`}>Values (comma-separated)</label>
            <input
              id={`${id}-values`}
              value={text}
              onChange={(e) => {
                setText(e.target.value)
                onChange({ ...clause, values: parseValues(clause.op, e.target.value) })
              }}
              disabled={readOnly}
            />
            <FieldError
              message={
                errors['values'] ??
                Object.entries(errors).find(([k]) => k.startsWith('values['))?.[1]
              }
            />
          </span>
        )
      )}
      {!readOnly && (
        <button type="button" className="link" onClick={onRemove} aria-label={`Remove ${label}`}>
          Remove
        </button>
      )}
      <FieldError message={errors['']} />
    </fieldset>
  )
}
