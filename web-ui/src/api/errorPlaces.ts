// Where a server validation error points, in the dashboard's terms. The server names the
// exact path in the request body (`environments.production.rules[0].serve.variant`, or for
// another flag the change broke, `flags.banner.config.prerequisites[0].variants[0]`); the
// flag page turns each into a link that opens the environment tab holding the field, and
// hands the editor of that tab the errors below it.

export interface ErrorPlace {
  /** The environment whose config holds the field, if any. */
  env?: string
  /** Another flag, when the change breaks one that depends on this flag. */
  flag?: string
  /** The path inside the config (or the definition, for `variants[...]`). */
  path: string
  /** The full field as the server named it. */
  field: string
  message: string
}

export function placeOf(field: string, message: string): ErrorPlace {
  const env = /^environments\.([^.[]+)(?:\.(.*))?$/.exec(field)
  if (env) return { env: env[1], path: env[2] ?? '', field, message }
  const other = /^flags\.([^.[]+)\.(?:config\.?)?(.*)$/.exec(field)
  if (other) {
    // The server says which environment: "in environment `production`: ...".
    const inEnv = /^in environment `([^`]+)`: /.exec(message)
    return { flag: other[1], env: inEnv?.[1], path: other[2], field, message }
  }
  const config = /^config(?:\.(.*))?$/.exec(field)
  if (config) return { path: config[1] ?? '', field, message }
  return { path: field, field, message }
}

/** `rules[0].serve.rollout.weights[1]` → `rule 1 › serve › rollout › weight 2`. */
export function humanPath(path: string): string {
  if (!path) return 'the configuration'
  const words: Record<string, string> = {
    off_variant: 'off variant',
    default_serve: 'default',
    rules: 'rule',
    targets: 'target',
    prerequisites: 'prerequisite',
    weights: 'weight',
    clauses: 'condition',
    variants: 'variant',
    values: 'value',
  }
  return path
    .split('.')
    .map((part) => {
      const m = /^([a-z_]+)\[(\d+)\]$/.exec(part)
      if (m) return `${words[m[1]] ?? m[1]} ${Number(m[2]) + 1}`
      return words[part] ?? part.replace(/_/g, ' ')
    })
    .join(' › ')
}

/** Errors grouped by environment key (`''` for those outside any environment). */
export function byEnvironment(places: ErrorPlace[]): Map<string, ErrorPlace[]> {
  const out = new Map<string, ErrorPlace[]>()
  for (const p of places) {
    const k = p.flag ? '' : (p.env ?? '')
    out.set(k, [...(out.get(k) ?? []), p])
  }
  return out
}
