// A percentage split over variants; the percentages must add up to exactly 100.
import { useId } from 'react'
import {
  percentToWeight,
  rolloutProblem,
  weightToPercent,
  type Rollout,
  type Variant,
} from '../api/model'
import { FieldError } from './common'

export function RolloutEditor({
  rollout,
  variants,
  onChange,
  errors,
  readOnly,
  label,
}: {
  rollout: Rollout
  variants: Variant[]
  onChange: (r: Rollout) => void
  /** Server errors under this rollout, keyed by path relative to it (`weights`, `weights[1].weight`). */
  errors: Record<string, string>
  readOnly?: boolean
  label: string
}) {
  const id = useId()
  const problem = rolloutProblem(rollout.weights)
  const byVariant = new Map(rollout.weights.map((w) => [w.variant, w.weight]))
  const set = (variant: string, percent: number) => {
    const weights = variants.map((v) => ({
      variant: v.key,
      weight: v.key === variant ? percentToWeight(percent) : (byVariant.get(v.key) ?? 0),
    }))
    onChange({ ...rollout, weights })
  }
  const sum = rollout.weights.reduce((s, w) => s + w.weight, 0)
  return (
    <fieldset className="rollout">
      <legend>{label}</legend>
      {variants.map((v, i) => (
        <div key={v.key} className="row">
          <label htmlFor={`${id}-${v.key}`}>{v.name || v.key}</label>
          <input
            id={`${id}-${v.key}`}
            type="number"
            min={0}
            max={100}
            step="any"
            inputMode="decimal"
            value={weightToPercent(byVariant.get(v.key) ?? 0)}
            onChange={(e) => set(v.key, Number(e.target.value))}
            disabled={readOnly}
            aria-describedby={`${id}-sum`}
          />
          <span aria-hidden="true">%</span>
          <FieldError message={errors[`weights[${i}].weight`] ?? errors[`weights[${i}]`]} />
        </div>
      ))}
      <div className="row">
        <label htmlFor={`${id}-bucket`}>Bucket by</label>
        <input
          id={`${id}-bucket`}
          value={rollout.bucket_by ?? ''}
          placeholder="key (the targeting key)"
          onChange={(e) => onChange({ ...rollout, bucket_by: e.target.value })}
          disabled={readOnly}
        />
        <FieldError message={errors['bucket_by']} />
      </div>
      <p id={`${id}-sum`} className={problem ? 'invalid' : 'valid'} role={problem ? 'alert' : undefined}>
        Total: {weightToPercent(sum)}%{problem ? ` — ${problem}` : ''}
      </p>
      <FieldError message={errors['weights'] ?? errors['']} />
    </fieldset>
  )
}
