// The per-environment flag configuration. The server's OpenAPI document describes it as a
// plain object (it is flagpole-core's `FlagConfig`, which carries no OpenAPI schema), so
// its shape is written here, once, following crates/flagpole-core/src/model.rs.

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

export interface Variant {
  key: string
  value: Json
  name?: string
  description?: string
}

export interface WeightedVariant {
  variant: string
  /** In 0.001% units: 100000 is 100%. */
  weight: number
}

export interface Rollout {
  bucket_by?: string
  weights: WeightedVariant[]
}

export type Serve = { variant: string } | { rollout: Rollout }

export const OPERATORS = [
  'in', 'contains', 'starts_with', 'ends_with', 'matches', 'eq', 'lt', 'lte', 'gt', 'gte',
  'semver_eq', 'semver_lt', 'semver_lte', 'semver_gt', 'semver_gte', 'before', 'after',
  'exists', 'in_segment',
] as const
export type Operator = (typeof OPERATORS)[number]

export interface Clause {
  attribute: string
  op: Operator
  values: Json[]
  negate?: boolean
  case_insensitive?: boolean
}

export interface Rule {
  id: string
  description?: string
  clauses: Clause[]
  serve: Serve
}

export interface Target {
  variant: string
  keys: string[]
}

export interface Prerequisite {
  flag: string
  variants: string[]
}

export interface FlagConfig {
  enabled: boolean
  off_variant: string
  targets: Target[]
  prerequisites: Prerequisite[]
  rules: Rule[]
  default_serve: Serve
}

export const TOTAL_WEIGHT = 100_000

/** A config as stored, with absent lists made empty so editors can rely on them. */
export function normalizeConfig(raw: unknown): FlagConfig {
  const c = (raw ?? {}) as Partial<FlagConfig>
  return {
    enabled: !!c.enabled,
    off_variant: c.off_variant ?? '',
    targets: c.targets ?? [],
    prerequisites: c.prerequisites ?? [],
    rules: (c.rules ?? []).map((r) => ({ ...r, clauses: r.clauses ?? [] })),
    default_serve: c.default_serve ?? { variant: '' },
  }
}

/** Percent (as typed by a person, up to 3 decimals) → weight units. */
export function percentToWeight(percent: number): number {
  return Math.round(percent * 1000)
}

/** Weight units → percent. */
export function weightToPercent(weight: number): number {
  return weight / 1000
}

/**
 * What is wrong with a rollout, or null if it is valid: weights must be whole
 * non-negative units and sum to exactly 100%.
 */
export function rolloutProblem(weights: WeightedVariant[]): string | null {
  if (weights.length === 0) return 'Add at least one variant to the rollout.'
  for (const w of weights) {
    if (!Number.isFinite(w.weight) || w.weight < 0) return 'Percentages cannot be negative.'
  }
  const sum = weights.reduce((s, w) => s + w.weight, 0)
  if (sum !== TOTAL_WEIGHT) {
    return `Percentages add up to ${weightToPercent(sum)}%; they must add up to 100%.`
  }
  return null
}

/** Operators that compare without values. */
export function takesValues(op: Operator): boolean {
  return op !== 'exists'
}

/** Operators whose values are numbers. */
export function numericOperator(op: Operator): boolean {
  return ['eq', 'lt', 'lte', 'gt', 'gte'].includes(op)
}

/**
 * Clause values from the comma-separated text a person typed: numbers for numeric
 * operators, `true`/`false` and numbers stay typed for `in` only when quoted otherwise.
 */
export function parseValues(op: Operator, text: string): Json[] {
  const parts = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
  if (numericOperator(op)) return parts.map((p) => (Number.isNaN(Number(p)) ? p : Number(p)))
  if (op === 'in') {
    return parts.map((p) => {
      if (p === 'true') return true
      if (p === 'false') return false
      if (/^-?\d+(\.\d+)?$/.test(p)) return Number(p)
      return p.replace(/^"(.*)"$/, '$1')
    })
  }
  return parts
}

/** The text a person edits for clause values. */
export function formatValues(values: Json[]): string {
  return values.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(', ')
}

/** A rule id that does not collide with the others. */
export function newRuleId(rules: Rule[]): string {
  let n = rules.length + 1
  const taken = new Set(rules.map((r) => r.id))
  while (taken.has(`rule-${n}`)) n++
  return `rule-${n}`
}
