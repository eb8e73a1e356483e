import { expect, it } from 'vitest'
import { keyFromName, projectPath } from './projectKey'

it('derives a URL-safe key from a name', () => {
  expect(keyFromName('Billing Team')).toBe('billing-team')
  expect(keyFromName('  Café · Ops 2.0 ')).toBe('cafe-ops-2-0')
  expect(keyFromName('snake_case ok')).toBe('snake_case-ok')
  // Names that leave nothing usable give an empty key, which the form then asks for.
  expect(keyFromName('.')).toBe('')
  expect(keyFromName('..')).toBe('')
})

it('encodes project keys in paths', () => {
  expect(projectPath('shop')).toBe('/p/shop/flags')
  expect(projectPath('a b', 'audit')).toBe('/p/a%20b/audit')
})
