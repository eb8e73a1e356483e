// The one typed API client. Paths, parameters and bodies come from schema.gen.ts, which
// `npm run gen:api` generates from openapi/openapi.json (the build fails if it is stale).
import createClient, { type Middleware } from 'openapi-fetch'
import type { components, paths } from './schema.gen'

export type Schemas = components['schemas']
export type User = Schemas['User']
export type Role = Schemas['Role']
export type FlagView = Schemas['FlagView']
export type FlagDetail = Schemas['FlagDetail']
export type FlagListItem = Schemas['FlagListItem']
export type Environment = Schemas['Environment']
export type AuditEvent = Schemas['AuditEvent']
export type HistoryEntry = Schemas['HistoryEntry']
export type RevertPreview = Schemas['RevertPreview']
export type SegmentView = Schemas['SegmentView']
export type ErrorBody = Schemas['ErrorBody']
export type DebugResult = Schemas['DebugResult']

let csrfToken = ''

/** Remembers the session's CSRF token, sent with every unsafe request. */
export function setCsrfToken(token: string) {
  csrfToken = token
}

const csrf: Middleware = {
  onRequest({ request }) {
    if (!['GET', 'HEAD', 'OPTIONS'].includes(request.method) && csrfToken) {
      request.headers.set('X-CSRF-Token', csrfToken)
    }
    return request
  },
}

export const api = createClient<paths>({ baseUrl: '', credentials: 'same-origin' })
api.use(csrf)

/** A failed API call: the HTTP status and the server's `{error: {...}}` body. */
export class ApiFailure extends Error {
  readonly status: number
  readonly body: ErrorBody | undefined
  constructor(status: number, body: ErrorBody | undefined) {
    super(body?.error?.message ?? `request failed with HTTP ${status}`)
    this.status = status
    this.body = body
  }
  get code(): string | undefined {
    return this.body?.error?.code
  }
}

let onUnauthenticated: () => void = () => {}
/** Called when any request answers 401 (the session ended): the app shows the sign-in page. */
export function setUnauthenticatedHandler(handler: () => void) {
  onUnauthenticated = handler
}

/** Unwraps an openapi-fetch result: the data, or a thrown [ApiFailure]. */
export async function call<T>(
  promise: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  const { data, error, response } = await promise
  if (!response.ok) {
    if (response.status === 401) onUnauthenticated()
    throw new ApiFailure(response.status, error as ErrorBody | undefined)
  }
  return data as T
}

/** Error messages by field path, from an error body: `config.rules[0].serve` → message. */
export function fieldErrors(err: unknown): Record<string, string> {
  if (!(err instanceof ApiFailure) || !err.body) return {}
  const out: Record<string, string> = {}
  const detail = err.body.error
  for (const d of detail.details ?? []) {
    if (d.field && !(d.field in out)) out[d.field] = d.message
  }
  if (detail.field && !(detail.field in out)) out[detail.field] = detail.message
  return out
}

/**
 * Errors at `prefix` or below it, with the prefix removed (`config.rules[0].serve` under
 * `config.rules[0]` is `serve`); an error exactly at the prefix is keyed by ''.
 */
export function errorsUnder(
  errors: Record<string, string>,
  prefix: string,
): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [field, message] of Object.entries(errors)) {
    if (field === prefix) out[''] = message
    else if (field.startsWith(prefix + '.')) out[field.slice(prefix.length + 1)] = message
    else if (field.startsWith(prefix + '[')) out[field.slice(prefix.length)] = message
  }
  return out
}

/** A human message for any thrown value. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message
  return String(err)
}
