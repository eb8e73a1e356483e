import { describe, expect, it } from 'vitest'
import { EMPTY_QUERY, PAGE_SIZE, countText, listParams, pageCount } from './flagList'

const page = (total: number, offset: number, shown: number) => ({
  total,
  offset,
  limit: PAGE_SIZE,
  items: Array.from({ length: shown }, () => ({})),
})

describe('the flag count', () => {
  it('says the total, and which ones are shown when there is more than a page', () => {
    expect(countText(page(3, 0, 3), 'flag')).toBe('3 flags')
    expect(countText(page(1, 0, 1), 'flag')).toBe('1 flag')
    expect(countText(page(2000, 0, 100), 'flag')).toBe('2,000 flags · showing 1–100')
    expect(countText(page(2000, 1900, 100), 'flag')).toBe('2,000 flags · showing 1,901–2,000')
    expect(countText(page(0, 0, 0), 'archived flag')).toBe('0 archived flags')
  })
  it('counts pages', () => {
    expect(pageCount(page(2000, 0, 100))).toBe(20)
    expect(pageCount(page(201, 0, 100))).toBe(3)
    expect(pageCount(page(0, 0, 0))).toBe(1)
  })
})

describe('list parameters', () => {
  it('sends only the filters in use', () => {
    expect(listParams(EMPTY_QUERY)).toEqual({
      q: undefined,
      tag: undefined,
      archived: undefined,
      stale: undefined,
      limit: PAGE_SIZE,
      offset: 0,
    })
    expect(listParams({ q: 'x', tag: 'web', archived: true, lifecycle: 'all', offset: 200 })).toMatchObject({
      q: 'x',
      tag: 'web',
      archived: true,
      offset: 200,
    })
    expect(listParams({ ...EMPTY_QUERY, lifecycle: 'stale' }).stale).toBe(true)
    expect(listParams({ ...EMPTY_QUERY, lifecycle: 'active' }).stale).toBe(false)
  })
})
