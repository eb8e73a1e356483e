// What a rule or the default serves: one variant, or a percentage rollout.
import { useId } from 'react'
import { TOTAL_WEIGHT, type Serve, type Variant } from '../api/model'
import { errorsUnder } from '../api/client'
import { FieldError } from './common'
import { RolloutEditor } from './RolloutEditor'

export function ServeEditor({
  serve,
  variants,
  onChange,
  errors,
  readOnly,
  label,
}: {
  serve: Serve
  variants: Variant[]
  onChange: (s: Serve) => void
  errors: Record<string, string>
  readOnly?: boolean
  label: string
}) {
  const id = useId()
  const isRollout = 'rollout' in serve
  const choose = (value: string) => {
    if (value === '__rollout') {
      const first = variants[0]?.key ?? ''
      onChange({
        rollout: {
          weights: variants.map((v) => ({ variant: v.key, weight: v.key === first ? TOTAL_WEIGHT : 0 })),
        },
      })
    } else {
      onChange({ variant: value })
    }
  }
  return (
    <div className="serve">
      <label htmlFor={id}>{label}</label>
      <select
        id={id}
        value={isRollout ? '__rollout' : serve.variant}
        onChange={(e) => choose(e.target.value)}
        disabled={readOnly}
      >
        {!isRollout && !variants.some((v) => v.key === serve.variant) && (
          <option value={serve.variant}>{serve.variant || '(choose)'}</option>
        )}
        {variants.map((v) => (
          <option key={v.key} value={v.key}>
            {v.name || v.key} ({JSON.stringify(v.value)})
          </option>
        ))}
        <option value="__rollout">Percentage rollout</option>
      </select>
      <FieldError message={errors['variant'] ?? errors['']} />
      {isRollout && (
        <RolloutEditor
          label={`${label}: rollout`}
          rollout={serve.rollout}
          variants={variants}
          onChange={(rollout) => onChange({ rollout })}
          errors={errorsUnder(errors, 'rollout')}
          readOnly={readOnly}
        />
      )}
    </div>
  )
}
