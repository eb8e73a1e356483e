import { describe, expect, it } from 'vitest'
import { ApiFailure, errorsUnder, fieldErrors } from './client'

const failure = new ApiFailure(422, {
  error: {
    code: 'validation_failed',
    message: 'config.rules[0].clauses[1].values: expected numbers',
    field: 'config.rules[0].clauses[1].values',
    details: [
      { field: 'config.rules[0].clauses[1].values', message: 'expected numbers' },
      { field: 'config.default_serve.rollout.weights', message: 'weights sum to 90000, not 100000' },
      { field: 'config.off_variant', message: 'unknown variant `of`' },
    ],
  },
})

describe('API error field mapping', () => {
  it('collects every field error, details first', () => {
    expect(fieldErrors(failure)).toEqual({
      'config.rules[0].clauses[1].values': 'expected numbers',
      'config.default_serve.rollout.weights': 'weights sum to 90000, not 100000',
      'config.off_variant': 'unknown variant `of`',
    })
  })
  it('narrows errors to the component that shows them', () => {
    const config = errorsUnder(fieldErrors(failure), 'config')
    expect(config['off_variant']).toBe('unknown variant `of`')
    const rule = errorsUnder(config, 'rules[0]')
    expect(errorsUnder(rule, 'clauses[1]')).toEqual({ values: 'expected numbers' })
    expect(errorsUnder(config, 'default_serve.rollout')).toEqual({ weights: 'weights sum to 90000, not 100000' })
    // An index prefix does not match a longer index.
    expect(errorsUnder({ 'rules[10].id': 'x' }, 'rules[1]')).toEqual({})
  })
  it('uses the top-level field when there are no details, and nothing for other errors', () => {
    const single = new ApiFailure(422, { error: { code: 'invalid', message: 'bad key', field: 'key' } })
    expect(fieldErrors(single)).toEqual({ key: 'bad key' })
    expect(fieldErrors(new Error('network'))).toEqual({})
    expect(fieldErrors(new ApiFailure(500, undefined))).toEqual({})
  })
})
