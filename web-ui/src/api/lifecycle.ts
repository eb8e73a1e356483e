// Flag lifecycle in the dashboard: the flag types and their words, the list's lifecycle
// filter, the badge's tooltip, and reading a project's lifetimes from a form. The server
// decides whether a flag is potentially stale; this only shows and edits.

export type FlagType = 'release' | 'experiment' | 'operational' | 'kill_switch' | 'permission'

/** Every type, in the order people pick them, with what it is for. */
export const FLAG_TYPES: { value: FlagType; label: string; hint: string }[] = [
  { value: 'release', label: 'Release', hint: 'ships a change gradually, then goes' },
  { value: 'experiment', label: 'Experiment', hint: 'an A/B test' },
  { value: 'operational', label: 'Operational', hint: 'a migration, a load shed: short-lived' },
  { value: 'kill_switch', label: 'Kill switch', hint: 'turns a feature off in an incident' },
  { value: 'permission', label: 'Permission', hint: 'grants a feature to some users' },
]

/** "Kill switch" for `kill_switch`; an unknown type as it is. */
export function typeLabel(t: string): string {
  return FLAG_TYPES.find((x) => x.value === t)?.label ?? t
}

/** Days per type; null: never expires. */
export type Lifetimes = Record<FlagType, number | null | undefined>

/** "40 days", "1 day", "never expires". */
export function lifetimeText(days: number | null | undefined): string {
  if (days == null) return 'never expires'
  return `${days} day${days === 1 ? '' : 's'}`
}

/** The list's lifecycle filter, and the `stale` parameter each sends. */
export type LifecycleFilter = 'all' | 'stale' | 'active'

export const LIFECYCLE_FILTERS: { value: LifecycleFilter; label: string }[] = [
  { value: 'all', label: 'All' },
  { value: 'stale', label: 'Potentially stale' },
  { value: 'active', label: 'Active' },
]

export function staleParam(filter: LifecycleFilter): boolean | undefined {
  return filter === 'all' ? undefined : filter === 'stale'
}

export interface LifecycleState {
  stale: boolean
  reasons: { code: string; message: string }[]
}

/** The badge's tooltip: every reason on its own line. */
export function staleTitle(lifecycle: LifecycleState): string {
  return lifecycle.reasons.map((r) => r.message).join('\n')
}

/** Highest lifetime the server accepts (a century); longer is "never". */
export const MAX_LIFETIME_DAYS = 36_500

/**
 * A lifetime as typed in the form: empty is "never expires" (null), otherwise a whole
 * number of days from 1 to 36,500. The server checks the same and names the field.
 */
export function parseLifetime(text: string): { days: number | null } | { error: string } {
  const t = text.trim()
  if (t === '') return { days: null }
  if (!/^\d+$/.test(t)) return { error: 'a whole number of days, or empty for never' }
  const days = Number(t)
  if (days < 1 || days > MAX_LIFETIME_DAYS) return { error: `from 1 to ${MAX_LIFETIME_DAYS.toLocaleString('en-US')} days` }
  return { days }
}

/**
 * The body's `lifetimes` from the form's texts (every type, so what is shown is what is
 * stored), or the errors keyed like the server's (`lifetimes.operational`).
 */
export function lifetimesBody(
  texts: Record<FlagType, string>,
): { lifetimes: Record<FlagType, number | null> } | { errors: Record<string, string> } {
  const lifetimes = {} as Record<FlagType, number | null>
  const errors: Record<string, string> = {}
  for (const { value } of FLAG_TYPES) {
    const parsed = parseLifetime(texts[value] ?? '')
    if ('error' in parsed) errors[`lifetimes.${value}`] = parsed.error
    else lifetimes[value] = parsed.days
  }
  return Object.keys(errors).length ? { errors } : { lifetimes }
}

/** The form's texts for stored lifetimes: days as digits, never as empty. */
export function lifetimeTexts(l: Lifetimes): Record<FlagType, string> {
  return Object.fromEntries(FLAG_TYPES.map(({ value }) => [value, l[value] == null ? '' : String(l[value])])) as Record<
    FlagType,
    string
  >
}
