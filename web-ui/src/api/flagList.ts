// The flags list's query and paging, apart from the page so vitest checks it: the server
// answers at most 200 flags a page, and the list must say how many there are in all.
import { api, call, type FlagListItem } from './client'
import { staleParam, type LifecycleFilter } from './lifecycle'

/** What the list shows. A new filter (say, type) is one more field here. */
export interface FlagQuery {
  q: string
  tag: string
  archived: boolean
  /** Potentially stale flags, the others, or all. */
  lifecycle: LifecycleFilter
  offset: number
}

export const EMPTY_QUERY: FlagQuery = { q: '', tag: '', archived: false, lifecycle: 'all', offset: 0 }

/** Flags per page. */
export const PAGE_SIZE = 100

export interface Page {
  total: number
  limit: number
  offset: number
  items: unknown[]
}

/** The query parameters of `GET .../flags` for a list query. */
export function listParams(q: FlagQuery) {
  return {
    q: q.q || undefined,
    tag: q.tag || undefined,
    archived: q.archived || undefined,
    stale: staleParam(q.lifecycle),
    limit: PAGE_SIZE,
    offset: q.offset,
  }
}

export function pageCount(page: Page): number {
  return Math.max(1, Math.ceil(page.total / page.limit))
}

/** "2,000 flags · showing 101–200". */
export function countText(page: Page, noun: string): string {
  const n = (x: number) => x.toLocaleString('en-US')
  const all = `${n(page.total)} ${noun}${page.total === 1 ? '' : 's'}`
  if (page.total <= page.items.length && page.offset === 0) return all
  if (page.items.length === 0) return `${all} · nothing on this page`
  return `${all} · showing ${n(page.offset + 1)}–${n(page.offset + page.items.length)}`
}

/** Every live flag of a project, page after page (for pickers and the tag filter). */
export async function allFlags(project: string): Promise<FlagListItem[]> {
  const out: FlagListItem[] = []
  for (;;) {
    const page = await call(
      api.GET('/api/v1/projects/{project}/flags', {
        params: { path: { project }, query: { limit: 200, offset: out.length } },
      }),
    )
    out.push(...page.items)
    if (page.items.length === 0 || out.length >= page.total) return out
  }
}
