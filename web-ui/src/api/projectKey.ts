// Project keys in the dashboard: deriving one from a name, and the paths of a project's pages.

/** A project's pages. Keys are plain URL segments (letters, digits, `-`, `_`: the server
 * refuses anything else, and migration 0008 rewrote older keys with dots, whose `/p/./flags`
 * collapsed into a dead page); encoded anyway, as every other path parameter. */
export function projectPath(key: string, page = 'flags'): string {
  return `/p/${encodeURIComponent(key)}/${page}`
}

/** A key derived from a name: lower case, runs of anything but letters and digits become
 * `-`, trimmed: "Billing Team" → `billing-team`. */
export function keyFromName(name: string): string {
  return name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 200)
}
