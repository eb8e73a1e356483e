// The variants of a flag as a table of typed inputs: a string is typed as itself, a number
// in a number input, and only a JSON flag gets a JSON editor. Used by the create form and
// the flag page; what a save means (renames, new values) is `planVariantEdit`'s business.
import { useId } from 'react'
import type { FlagKind, VariantRow } from '../api/variants'
import { FieldError } from './common'

export function VariantTable({
  kind,
  rows,
  onChange,
  errors,
  readOnly,
}: {
  kind: FlagKind
  rows: VariantRow[]
  onChange: (rows: VariantRow[]) => void
  /** By path: `variants[1].key`, `variants[1].value`, `variants[1]`, `variants`. */
  errors: Record<string, string>
  readOnly?: boolean
}) {
  const id = useId()
  const set = (i: number, patch: Partial<VariantRow>) => {
    const next = rows.slice()
    next[i] = { ...next[i], ...patch }
    onChange(next)
  }
  const fixed = kind === 'boolean'
  return (
    <div className="variant-table">
      <table>
        <thead>
          <tr>
            <th scope="col">Key</th>
            <th scope="col">Name</th>
            <th scope="col">Value{kind === 'json' ? ' (JSON)' : ''}</th>
            {!readOnly && !fixed && <th scope="col"><span className="sr-only">Remove</span></th>}
          </tr>
        </thead>
        <tbody>
          {rows.map((r, i) => {
            const keyError = errors[`variants[${i}].key`]
            const valueError = errors[`variants[${i}].value`] ?? errors[`variants[${i}]`]
            return (
              <tr key={i} data-variant={r.from ?? `new-${i}`}>
                <td>
                  <label className="sr-only" htmlFor={`${id}k${i}`}>Variant {i + 1} key</label>
                  <input
                    id={`${id}k${i}`}
                    value={r.key}
                    disabled={readOnly}
                    aria-invalid={!!keyError}
                    onChange={(e) => set(i, { key: e.target.value })}
                  />
                  {r.from !== undefined && r.from !== r.key && (
                    <span className="hint rename-hint">renames {r.from} everywhere</span>
                  )}
                  <FieldError message={keyError} />
                </td>
                <td>
                  <label className="sr-only" htmlFor={`${id}n${i}`}>Variant {i + 1} name</label>
                  <input id={`${id}n${i}`} value={r.name} disabled={readOnly} onChange={(e) => set(i, { name: e.target.value })} />
                </td>
                <td>
                  <label className="sr-only" htmlFor={`${id}v${i}`}>Variant {i + 1} value</label>
                  {kind === 'json' ? (
                    <textarea
                      id={`${id}v${i}`}
                      className="json"
                      rows={Math.min(8, Math.max(2, r.value.split('\n').length))}
                      spellCheck={false}
                      value={r.value}
                      disabled={readOnly}
                      aria-invalid={!!valueError}
                      onChange={(e) => set(i, { value: e.target.value })}
                    />
                  ) : (
                    <input
                      id={`${id}v${i}`}
                      type={kind === 'number' ? 'number' : 'text'}
                      step="any"
                      value={r.value}
                      disabled={readOnly || fixed}
                      aria-invalid={!!valueError}
                      onChange={(e) => set(i, { value: e.target.value })}
                    />
                  )}
                  <FieldError message={valueError} />
                </td>
                {!readOnly && !fixed && (
                  <td>
                    <button
                      type="button"
                      aria-label={`Remove variant ${r.key || i + 1}`}
                      disabled={rows.length <= 1}
                      onClick={() => onChange(rows.filter((_, j) => j !== i))}
                    >
                      Remove
                    </button>
                  </td>
                )}
              </tr>
            )
          })}
        </tbody>
      </table>
      <FieldError message={errors['variants']} />
      {!readOnly && !fixed && (
        <button
          type="button"
          onClick={() =>
            onChange([...rows, { key: `variant-${rows.length + 1}`, name: '', value: kind === 'number' ? '0' : kind === 'json' ? '{}' : '' }])
          }
        >
          Add variant
        </button>
      )}
    </div>
  )
}
