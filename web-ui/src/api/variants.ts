// Pure logic of the flag forms: a key derived from a name, variant values typed by the
// flag's kind (a string is typed as itself, never as quoted JSON), and the renames a
// variant table's edits amount to. Kept apart from the components so vitest checks it.
import type { Json, Variant } from './model'

export type FlagKind = 'boolean' | 'string' | 'number' | 'json'

/** A flag (or variant) key from a display name: "New checkout flow!" → "new-checkout-flow". */
export function keyFromName(name: string): string {
  return name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/-{2,}/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '')
    .slice(0, 200)
}

/** What a variant value input shows for a stored value. */
export function valueText(kind: FlagKind, value: Json): string {
  if (kind === 'string' && typeof value === 'string') return value
  if (kind === 'number' && typeof value === 'number') return String(value)
  if (kind === 'boolean' && typeof value === 'boolean') return String(value)
  return JSON.stringify(value, null, kind === 'json' ? 2 : undefined)
}

/** The value an input's text stands for, or why it stands for none. */
export function parseValue(kind: FlagKind, text: string): { value: Json } | { error: string } {
  switch (kind) {
    case 'string':
      return { value: text }
    case 'number': {
      const trimmed = text.trim()
      const n = Number(trimmed)
      if (trimmed === '' || !Number.isFinite(n)) return { error: 'Enter a number, such as 10 or 0.5.' }
      return { value: n }
    }
    case 'boolean':
      if (text === 'true' || text === 'false') return { value: text === 'true' }
      return { error: 'A boolean flag serves true or false.' }
    case 'json':
      try {
        return { value: JSON.parse(text) as Json }
      } catch (e) {
        return { error: `Not valid JSON: ${e instanceof Error ? e.message : String(e)}` }
      }
  }
}

/** A row of a variant table being edited; `from` is the stored key (absent for a new row). */
export interface VariantRow {
  from?: string
  key: string
  name: string
  value: string
}

export function rowsOf(kind: FlagKind, variants: Variant[]): VariantRow[] {
  return variants.map((v) => ({ from: v.key, key: v.key, name: v.name ?? '', value: valueText(kind, v.value) }))
}

/** Variants a new flag of this kind starts with, as editable rows. */
export function starterRows(kind: FlagKind): VariantRow[] {
  switch (kind) {
    case 'string':
      return [
        { key: 'control', name: '', value: '' },
        { key: 'treatment', name: '', value: '' },
      ]
    case 'number':
      return [
        { key: 'low', name: '', value: '0' },
        { key: 'high', name: '', value: '1' },
      ]
    case 'json':
      return [{ key: 'default', name: '', value: '{}' }]
    case 'boolean':
      return []
  }
}

export interface VariantEdit {
  /** Stored variants whose key changed, in table order: each is one rename on the server. */
  renames: { from: string; to: string }[]
  /** The variants to store once the renames are done (new keys), or null if only keys changed. */
  variants: Variant[] | null
  /** Problems by field path (`variants[1].value`), as the server would name them. */
  errors: Record<string, string>
}

/**
 * What saving the table means: the renames (which the server applies to every reference in
 * one write each) and the rest of the definition (values, names, added or removed rows).
 */
export function planVariantEdit(kind: FlagKind, stored: Variant[], rows: VariantRow[]): VariantEdit {
  const errors: Record<string, string> = {}
  const variants: Variant[] = []
  const seen = new Map<string, number>()
  rows.forEach((r, i) => {
    if (r.key.trim() === '') errors[`variants[${i}].key`] = 'A variant needs a key.'
    else if (seen.has(r.key)) errors[`variants[${i}].key`] = `Variant ${seen.get(r.key)! + 1} already has the key ${r.key}.`
    seen.set(r.key, i)
    const parsed = parseValue(kind, r.value)
    if ('error' in parsed) errors[`variants[${i}].value`] = parsed.error
    else variants.push({ key: r.key, value: parsed.value, ...(r.name ? { name: r.name } : {}) })
  })
  const renames = rows
    .filter((r): r is VariantRow & { from: string } => r.from !== undefined && r.from !== r.key)
    .map((r) => ({ from: r.from, to: r.key }))
  // A rename whose target is another stored variant that keeps its key would collide.
  const kept = new Set(rows.filter((r) => r.from === r.key).map((r) => r.key))
  rows.forEach((r, i) => {
    if (r.from !== undefined && r.from !== r.key && kept.has(r.key) && !errors[`variants[${i}].key`])
      errors[`variants[${i}].key`] = `Another variant is called ${r.key}.`
  })
  const afterRenames = stored.map((v) => {
    const renamed = renames.find((x) => x.from === v.key)
    return renamed ? { ...v, key: renamed.to } : v
  })
  const same = JSON.stringify(afterRenames.map(normalise)) === JSON.stringify(variants.map(normalise))
  return { renames, variants: same ? null : variants, errors }
}

function normalise(v: Variant) {
  return { key: v.key, value: v.value, name: v.name || undefined }
}
