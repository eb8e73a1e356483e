// A readable structural diff of two JSON values: the paths that differ, with their values
// before and after. Used for the audit log, conflicts and history.

export interface Change {
  path: string
  before: unknown
  after: unknown
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

export function diffJson(before: unknown, after: unknown, path = ''): Change[] {
  if (JSON.stringify(before) === JSON.stringify(after)) return []
  if (isObject(before) && isObject(after)) {
    const keys = Array.from(new Set([...Object.keys(before), ...Object.keys(after)])).sort()
    return keys.flatMap((k) => diffJson(before[k], after[k], path ? `${path}.${k}` : k))
  }
  if (Array.isArray(before) && Array.isArray(after) && before.length === after.length) {
    return before.flatMap((b, i) => diffJson(b, after[i], `${path}[${i}]`))
  }
  return [{ path: path || '(value)', before, after }]
}

/** A short text for one side of a change. */
export function show(value: unknown): string {
  if (value === undefined) return '—'
  const text = JSON.stringify(value)
  return text.length > 120 ? text.slice(0, 119) + '…' : text
}
