// One environment's configuration of a flag: off variant, individual targets,
// prerequisites, rules (add, reorder, delete) and the default serve. Errors from the
// server arrive keyed by path under `config.` and are shown next to their fields.
import { useId } from 'react'
import { errorsUnder } from '../api/client'
import { newRuleId, type Clause, type FlagConfig, type Rule, type Variant } from '../api/model'
import { ClauseBuilder } from './ClauseBuilder'
import { FieldError } from './common'
import { ServeEditor } from './ServeEditor'

export interface ConfigEditorProps {
  config: FlagConfig
  variants: Variant[]
  onChange: (c: FlagConfig) => void
  errors: Record<string, string>
  segments: { key: string; name: string }[]
  otherFlags: string[]
  readOnly?: boolean
}

function move<T>(list: T[], from: number, to: number): T[] {
  const next = list.slice()
  const [item] = next.splice(from, 1)
  next.splice(to, 0, item)
  return next
}

export function ConfigEditor(props: ConfigEditorProps) {
  const { config, variants, onChange, errors, readOnly } = props
  const id = useId()
  const setRules = (rules: Rule[]) => onChange({ ...config, rules })
  const addRule = () =>
    setRules([
      ...config.rules,
      {
        id: newRuleId(config.rules),
        clauses: [{ attribute: '', op: 'in', values: [] }],
        serve: { variant: variants[0]?.key ?? '' },
      },
    ])
  return (
    <div className="config">
      <section aria-labelledby={`${id}-off`}>
        <h3 id={`${id}-off`}>When off</h3>
        <label htmlFor={`${id}-offv`}>Off variant</label>
        <select
          id={`${id}-offv`}
          value={config.off_variant}
          onChange={(e) => onChange({ ...config, off_variant: e.target.value })}
          disabled={readOnly}
        >
          {variants.map((v) => (
            <option key={v.key} value={v.key}>
              {v.name || v.key}
            </option>
          ))}
        </select>
        <FieldError message={errors['off_variant']} />
      </section>

      <section aria-labelledby={`${id}-prereq`}>
        <h3 id={`${id}-prereq`}>Prerequisites</h3>
        {config.prerequisites.length === 0 && <p className="hint">None: this flag does not depend on another.</p>}
        {config.prerequisites.map((p, i) => (
          <div key={i} className="row">
            <label htmlFor={`${id}-pf${i}`}>Flag</label>
            <select
              id={`${id}-pf${i}`}
              value={p.flag}
              onChange={(e) => {
                const prerequisites = config.prerequisites.slice()
                prerequisites[i] = { ...p, flag: e.target.value }
                onChange({ ...config, prerequisites })
              }}
              disabled={readOnly}
            >
              <option value="">(choose)</option>
              {props.otherFlags.map((f) => (
                <option key={f} value={f}>
                  {f}
                </option>
              ))}
            </select>
            <label htmlFor={`${id}-pv${i}`}>serves one of (comma-separated variants)</label>
            <input
              id={`${id}-pv${i}`}
              value={p.variants.join(', ')}
              onChange={(e) => {
                const prerequisites = config.prerequisites.slice()
                prerequisites[i] = {
                  ...p,
                  variants: e.target.value.split(',').map((s) => s.trim()).filter(Boolean),
                }
                onChange({ ...config, prerequisites })
              }}
              disabled={readOnly}
            />
            {!readOnly && (
              <button
                type="button"
                className="link"
                onClick={() =>
                  onChange({ ...config, prerequisites: config.prerequisites.filter((_, j) => j !== i) })
                }
              >
                Remove prerequisite
              </button>
            )}
            <FieldError
              message={Object.values(errorsUnder(errors, `prerequisites[${i}]`))[0]}
            />
          </div>
        ))}
        {!readOnly && (
          <button
            type="button"
            onClick={() =>
              onChange({ ...config, prerequisites: [...config.prerequisites, { flag: '', variants: [] }] })
            }
          >
            Add prerequisite
          </button>
        )}
      </section>

      <section aria-labelledby={`${id}-targets`}>
        <h3 id={`${id}-targets`}>Individual targets</h3>
        {variants.map((v) => {
          const index = config.targets.findIndex((t) => t.variant === v.key)
          const keys = index >= 0 ? config.targets[index].keys : []
          return (
            <div key={v.key} className="row">
              <label htmlFor={`${id}-t-${v.key}`}>Serve {v.name || v.key} to keys</label>
              <input
                id={`${id}-t-${v.key}`}
                value={keys.join(', ')}
                placeholder="user-1, user-2"
                onChange={(e) => {
                  const list = e.target.value.split(',').map((s) => s.trim()).filter(Boolean)
                  const targets = config.targets.filter((t) => t.variant !== v.key)
                  if (list.length > 0) targets.push({ variant: v.key, keys: list })
                  onChange({ ...config, targets })
                }}
                disabled={readOnly}
              />
              {index >= 0 && (
                <FieldError message={Object.values(errorsUnder(errors, `targets[${index}]`))[0]} />
              )}
            </div>
          )
        })}
      </section>

      <section aria-labelledby={`${id}-rules`}>
        <h3 id={`${id}-rules`}>Rules</h3>
        {config.rules.length === 0 && <p className="hint">No rules: everyone gets the default.</p>}
        <ol className="rules">
          {config.rules.map((rule, i) => {
            const ruleErrors = errorsUnder(errors, `rules[${i}]`)
            const setRule = (r: Rule) => {
              const rules = config.rules.slice()
              rules[i] = r
              setRules(rules)
            }
            return (
              <li key={rule.id || i} className="rule" aria-label={`Rule ${i + 1}`}>
                <div className="rule-head">
                  <strong>Rule {i + 1}</strong>
                  <label htmlFor={`${id}-r${i}-desc`} className="sr-only">
                    Rule {i + 1} description
                  </label>
                  <input
                    id={`${id}-r${i}-desc`}
                    placeholder="Description"
                    value={rule.description ?? ''}
                    onChange={(e) => setRule({ ...rule, description: e.target.value })}
                    disabled={readOnly}
                  />
                  {!readOnly && (
                    <span className="buttons">
                      <button
                        type="button"
                        disabled={i === 0}
                        onClick={() => setRules(move(config.rules, i, i - 1))}
                        aria-label={`Move rule ${i + 1} up`}
                      >
                        ↑
                      </button>
                      <button
                        type="button"
                        disabled={i === config.rules.length - 1}
                        onClick={() => setRules(move(config.rules, i, i + 1))}
                        aria-label={`Move rule ${i + 1} down`}
                      >
                        ↓
                      </button>
                      <button
                        type="button"
                        className="danger"
                        onClick={() => setRules(config.rules.filter((_, j) => j !== i))}
                        aria-label={`Delete rule ${i + 1}`}
                      >
                        Delete
                      </button>
                    </span>
                  )}
                </div>
                <FieldError message={ruleErrors[''] ?? ruleErrors['id']} />
                <p className="hint">If all of these match:</p>
                {rule.clauses.map((clause, j) => (
                  <ClauseBuilder
                    key={`${rule.id}-${j}-${rule.clauses.length}`}
                    label={`Rule ${i + 1} condition ${j + 1}`}
                    clause={clause}
                    segments={props.segments}
                    errors={errorsUnder(ruleErrors, `clauses[${j}]`)}
                    readOnly={readOnly}
                    onChange={(c: Clause) => {
                      const clauses = rule.clauses.slice()
                      clauses[j] = c
                      setRule({ ...rule, clauses })
                    }}
                    onRemove={() => setRule({ ...rule, clauses: rule.clauses.filter((_, k) => k !== j) })}
                  />
                ))}
                <FieldError message={ruleErrors['clauses']} />
                {!readOnly && (
                  <button
                    type="button"
                    onClick={() =>
                      setRule({ ...rule, clauses: [...rule.clauses, { attribute: '', op: 'in', values: [] }] })
                    }
                  >
                    Add condition
                  </button>
                )}
                <ServeEditor
                  label={`Rule ${i + 1} serves`}
                  serve={rule.serve}
                  variants={variants}
                  errors={errorsUnder(ruleErrors, 'serve')}
                  readOnly={readOnly}
                  onChange={(serve) => setRule({ ...rule, serve })}
                />
              </li>
            )
          })}
        </ol>
        {!readOnly && (
          <button type="button" onClick={addRule}>
            Add rule
          </button>
        )}
      </section>

      <section aria-labelledby={`${id}-default`}>
        <h3 id={`${id}-default`}>Everyone else</h3>
        <ServeEditor
          label="Default serves"
          serve={config.default_serve}
          variants={variants}
          errors={errorsUnder(errors, 'default_serve')}
          readOnly={readOnly}
          onChange={(default_serve) => onChange({ ...config, default_serve })}
        />
      </section>
    </div>
  )
}
