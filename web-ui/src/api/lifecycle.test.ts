import { describe, expect, it } from 'vitest'
import {
  FLAG_TYPES,
  lifetimeText,
  lifetimeTexts,
  lifetimesBody,
  parseLifetime,
  staleParam,
  staleTitle,
  typeLabel,
} from './lifecycle'

describe('flag types', () => {
  it('lists the five types the server knows, in words', () => {
    expect(FLAG_TYPES.map((t) => t.value)).toEqual(['release', 'experiment', 'operational', 'kill_switch', 'permission'])
    expect(typeLabel('kill_switch')).toBe('Kill switch')
    expect(typeLabel('something_new')).toBe('something_new')
  })
  it('says how long a type lives', () => {
    expect(lifetimeText(40)).toBe('40 days')
    expect(lifetimeText(1)).toBe('1 day')
    expect(lifetimeText(null)).toBe('never expires')
  })
})

describe('the lifecycle filter and badge', () => {
  it('sends stale only when filtering', () => {
    expect(staleParam('all')).toBeUndefined()
    expect(staleParam('stale')).toBe(true)
    expect(staleParam('active')).toBe(false)
  })
  it('puts every reason on its own line of the tooltip', () => {
    const lifecycle = {
      stale: true,
      reasons: [
        { code: 'lifetime_exceeded', message: 'lifetime of 7 days for operational flags exceeded (created 10 days ago)' },
        { code: 'not_evaluated', message: 'not evaluated in any environment for the last 7 days' },
      ],
    }
    expect(staleTitle(lifecycle)).toBe(
      'lifetime of 7 days for operational flags exceeded (created 10 days ago)\nnot evaluated in any environment for the last 7 days',
    )
  })
})

describe('project lifetimes in the form', () => {
  it('reads days, empty as never, and refuses the rest', () => {
    expect(parseLifetime('14')).toEqual({ days: 14 })
    expect(parseLifetime(' 7 ')).toEqual({ days: 7 })
    expect(parseLifetime('')).toEqual({ days: null })
    for (const bad of ['0', '-1', '1.5', 'ten', '36501']) expect(parseLifetime(bad)).toHaveProperty('error')
  })
  it('builds the body with every type, or errors named like the server names them', () => {
    const texts = { release: '40', experiment: '', operational: '14', kill_switch: '', permission: '' }
    expect(lifetimesBody(texts)).toEqual({
      lifetimes: { release: 40, experiment: null, operational: 14, kill_switch: null, permission: null },
    })
    expect(lifetimesBody({ ...texts, operational: '0', release: 'x' })).toEqual({
      errors: { 'lifetimes.operational': expect.any(String), 'lifetimes.release': expect.any(String) },
    })
  })
  it('shows stored lifetimes as the form edits them', () => {
    const stored = { release: 40, experiment: 40, operational: 7, kill_switch: null, permission: null }
    const texts = lifetimeTexts(stored)
    expect(texts).toEqual({ release: '40', experiment: '40', operational: '7', kill_switch: '', permission: '' })
    expect(lifetimesBody(texts)).toEqual({ lifetimes: stored })
  })
})
