import { describe, expect, it } from 'vitest'
import { canCancel, canRebase, changeWords, localInputToUtc, showTime, utcToLocalInput } from './schedule'

describe('scheduled change times', () => {
  it('reads a local input in the viewer zone and stores UTC', () => {
    const iso = localInputToUtc('2026-12-24T09:30')!
    expect(iso.endsWith('Z')).toBe(true)
    expect(new Date(iso).getTime()).toBe(new Date(2026, 11, 24, 9, 30).getTime())
    expect(utcToLocalInput(iso)).toBe('2026-12-24T09:30')
  })
  it('shows a time with its zone (Intl refuses dateStyle with timeZoneName)', () => {
    const shown = showTime('2026-12-24T09:30:00Z')
    expect(shown).toMatch(/2026/)
    expect(shown).toMatch(/[A-Z]{2,}|[+-]\d/)
  })
  it('refuses what is not a time', () => {
    expect(localInputToUtc('')).toBeUndefined()
    expect(localInputToUtc('tomorrow')).toBeUndefined()
  })
})

describe('scheduled change words and actions', () => {
  it('names the change', () => {
    expect(changeWords({ enabled: true })).toBe('Turn on')
    expect(changeWords({ enabled: false })).toBe('Turn off')
    expect(changeWords({ config: { enabled: true } })).toBe('Replace the configuration (on)')
  })
  it('offers cancel and rebase where they apply', () => {
    expect(canCancel('scheduled')).toBe(true)
    expect(canCancel('applied')).toBe(false)
    expect(canRebase('conflict')).toBe(true)
    expect(canRebase('scheduled')).toBe(false)
  })
})
