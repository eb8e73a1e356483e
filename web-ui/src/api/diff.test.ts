import { expect, it } from 'vitest'
import { diffJson, show } from './diff'

it('names the changed paths of an audit entry, not the whole objects', () => {
  const before = {
    enabled: false,
    rules: [{ id: 'r1', clauses: [{ attribute: 'plan', op: 'in', values: ['pro'] }] }],
    default_serve: { variant: 'on' },
  }
  const after = {
    enabled: true,
    rules: [{ id: 'r1', clauses: [{ attribute: 'plan', op: 'in', values: ['pro', 'team'] }] }],
    default_serve: { rollout: { weights: [{ variant: 'on', weight: 30000 }, { variant: 'off', weight: 70000 }] } },
  }
  expect(diffJson(before, after)).toEqual([
    { path: 'default_serve.rollout', before: undefined, after: after.default_serve.rollout },
    { path: 'default_serve.variant', before: 'on', after: undefined },
    { path: 'enabled', before: false, after: true },
    { path: 'rules[0].clauses[0].values', before: ['pro'], after: ['pro', 'team'] },
  ])
  expect(diffJson(before, structuredClone(before))).toEqual([])
  // A created resource is one change from nothing.
  expect(diffJson(null, { key: 'f' })).toEqual([{ path: '(value)', before: null, after: { key: 'f' } }])
  expect(show(undefined)).toBe('—')
  expect(show('x'.repeat(200)).length).toBe(120)
})
