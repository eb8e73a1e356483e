import { describe, expect, it } from 'vitest'
import { byEnvironment, humanPath, placeOf } from './errorPlaces'

describe('where a server error points', () => {
  it('finds the environment and the path in its config', () => {
    expect(placeOf('environments.production.rules[0].serve.variant', 'unknown variant `a`')).toMatchObject({
      env: 'production',
      path: 'rules[0].serve.variant',
    })
    expect(placeOf('environments.staging', 'missing')).toMatchObject({ env: 'staging', path: '' })
  })
  it('names another flag the change broke, with the environment from the message', () => {
    expect(
      placeOf('flags.banner.config.prerequisites[0].variants[0]', 'in environment `production`: unknown variant'),
    ).toMatchObject({ flag: 'banner', env: 'production', path: 'prerequisites[0].variants[0]' })
  })
  it('keeps definition and single-config paths as they are', () => {
    expect(placeOf('variants[1].value', 'x')).toEqual({ path: 'variants[1].value', field: 'variants[1].value', message: 'x' })
    expect(placeOf('config.off_variant', 'x')).toEqual({ path: 'off_variant', field: 'config.off_variant', message: 'x' })
  })
  it('groups by environment, other flags apart', () => {
    const groups = byEnvironment([
      placeOf('environments.production.off_variant', 'a'),
      placeOf('environments.production.targets[0].variant', 'b'),
      placeOf('environments.staging.off_variant', 'c'),
      placeOf('flags.banner.config.prerequisites[0]', 'in environment `production`: d'),
    ])
    expect(groups.get('production')).toHaveLength(2)
    expect(groups.get('staging')).toHaveLength(1)
    expect(groups.get('')).toHaveLength(1)
  })
})

describe('paths in words', () => {
  it('counts from one and names the parts', () => {
    expect(humanPath('rules[0].serve.rollout.weights[1]')).toBe('rule 1 › serve › rollout › weight 2')
    expect(humanPath('off_variant')).toBe('off variant')
    expect(humanPath('')).toBe('the configuration')
  })
})
