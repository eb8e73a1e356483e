// Scheduled changes in the viewer's terms: the time a person picks in their own zone (a
// `datetime-local` input) as the UTC instant the server stores, and back; what a change
// does in words.
import type { Schemas } from './client'

export type ScheduledChange = Schemas['ScheduledChangeView']
export type ScheduledState = Schemas['ScheduledState']

/** A `datetime-local` value (`2026-12-24T09:00`, the viewer's zone) as RFC 3339 UTC;
 * `undefined` if it is not a time. */
export function localInputToUtc(value: string): string | undefined {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(value)) return undefined
  const t = new Date(value) // no offset: the browser reads it in the viewer's zone
  return Number.isNaN(t.getTime()) ? undefined : t.toISOString()
}

/** A UTC instant as a `datetime-local` value in the viewer's zone (minutes). */
export function utcToLocalInput(iso: string): string {
  const t = new Date(iso)
  const pad = (n: number) => String(n).padStart(2, '0')
  return `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())}T${pad(t.getHours())}:${pad(t.getMinutes())}`
}

/** A UTC instant in the viewer's zone, with the zone's name. */
export function showTime(iso: string): string {
  // Field by field: `dateStyle`/`timeStyle` cannot be combined with `timeZoneName`
  // (Intl throws "Invalid option"), and the zone must show, as times are the viewer's.
  return new Date(iso).toLocaleString(undefined, {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    timeZoneName: 'short',
  })
}

/** What a change does, in words. */
export function changeWords(change: unknown): string {
  const c = change as { enabled?: boolean; config?: { enabled?: boolean } }
  if (typeof c.enabled === 'boolean') return c.enabled ? 'Turn on' : 'Turn off'
  if (c.config) return `Replace the configuration (${c.config.enabled ? 'on' : 'off'})`
  return 'Change'
}

/** Cancel applies to waiting and conflicting changes, rebase to conflicts and failures. */
export function canCancel(state: ScheduledState): boolean {
  return state === 'scheduled' || state === 'conflict'
}
export function canRebase(state: ScheduledState): boolean {
  return state === 'conflict' || state === 'failed'
}
