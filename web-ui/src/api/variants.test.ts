import { describe, expect, it } from 'vitest'
import { keyFromName, parseValue, planVariantEdit, rowsOf, valueText } from './variants'

describe('key from a name', () => {
  it('lowercases, joins words with dashes and drops what a key cannot hold', () => {
    expect(keyFromName('New checkout flow!')).toBe('new-checkout-flow')
    expect(keyFromName('  Crème brûlée / v2 ')).toBe('creme-brulee-v2')
    expect(keyFromName('...')).toBe('')
    expect(keyFromName('a.b_c')).toBe('a.b_c')
  })
})

describe('typed variant values', () => {
  it('takes a string as typed, without JSON quotes', () => {
    expect(parseValue('string', 'Place order')).toEqual({ value: 'Place order' })
    expect(parseValue('string', '"quoted"')).toEqual({ value: '"quoted"' })
    expect(valueText('string', 'Place order')).toBe('Place order')
  })
  it('takes numbers and refuses what is not one', () => {
    expect(parseValue('number', ' 2.5 ')).toEqual({ value: 2.5 })
    expect(parseValue('number', '')).toHaveProperty('error')
    expect(parseValue('number', 'ten')).toHaveProperty('error')
    expect(valueText('number', 3)).toBe('3')
  })
  it('parses JSON only for JSON flags', () => {
    expect(parseValue('json', '{"a": [1]}')).toEqual({ value: { a: [1] } })
    expect(parseValue('json', '{a}')).toHaveProperty('error')
  })
})

describe('planning a variant edit', () => {
  const stored = [
    { key: 'a', value: 'Buy' },
    { key: 'b', value: 'Order' },
  ]
  it('turns a changed key into a rename and nothing else', () => {
    const rows = rowsOf('string', stored)
    rows[0].key = 'buy'
    expect(planVariantEdit('string', stored, rows)).toEqual({
      renames: [{ from: 'a', to: 'buy' }],
      variants: null,
      errors: {},
    })
  })
  it('sends the definition when values change or rows are added', () => {
    const rows = rowsOf('string', stored)
    rows[1].value = 'Order now'
    rows.push({ key: 'c', name: '', value: 'Checkout' })
    const plan = planVariantEdit('string', stored, rows)
    expect(plan.renames).toEqual([])
    expect(plan.variants).toEqual([
      { key: 'a', value: 'Buy' },
      { key: 'b', value: 'Order now' },
      { key: 'c', value: 'Checkout' },
    ])
  })
  it('names the row of a duplicate key or a bad value', () => {
    const rows = rowsOf('number', [
      { key: 'low', value: 0 },
      { key: 'high', value: 1 },
    ])
    rows[0].key = 'high'
    rows[1].value = 'x'
    const plan = planVariantEdit('number', [], rows)
    expect(plan.errors['variants[0].key']).toMatch(/high/)
    expect(plan.errors['variants[1].value']).toMatch(/number/)
  })
})
