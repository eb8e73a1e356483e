import { describe, expect, it } from 'vitest'
import { actionWords, dayStart } from './auditWords'

describe('audit actions in words', () => {
  it('says whether a toggle turned the flag on or off', () => {
    expect(actionWords({ action: 'flag.toggle', after: { enabled: true } })).toBe('turned on flag')
    expect(actionWords({ action: 'flag.toggle', after: { enabled: false } })).toBe('turned off flag')
  })
  it('words the known actions and makes unknown ones readable', () => {
    expect(actionWords({ action: 'flag_config.update' })).toBe('changed the targeting of flag')
    expect(actionWords({ action: 'flag.variant_rename' })).toBe('renamed a variant of flag')
    expect(actionWords({ action: 'environment.rename' })).toBe('renamed environment')
    expect(actionWords({ action: 'user.password_reset' })).toBe('password reset user')
  })
})

describe('date filter', () => {
  it('turns a day into the local start and the next day\'s start', () => {
    const from = dayStart('2026-03-01')!
    const to = dayStart('2026-03-01', true)!
    expect(new Date(from).getDate()).toBe(1)
    expect(new Date(to).getDate()).toBe(2)
    expect(dayStart('')).toBeUndefined()
  })
})
