// "Connect an application": the server's endpoints, snippets filled in with an SDK key and a
// real flag key (curl for OFREP, the OpenFeature Node client, the Rust SDK), a link to the
// API docs, and whether an application has connected with the key yet. The server notes
// every stream connection and OFREP call per key (`last_seen_at`); the guide polls the key
// list while it waits, and stops once the key was seen.
import { useEffect, useState } from 'react'
import { Link } from 'react-router'
import { api, call } from '../api/client'
import { formatTime } from './common'
import { curlSnippet, endpoints, nodeSnippet, rustSnippet, type FlagKind } from './snippets'

/** How often the guide asks whether the key has been seen while it waits. */
const POLL_MS = 2000

interface GuideFlag {
  key: string
  kind: FlagKind
}

/** A snippet with its copy button. */
export function Snippet({ id, title, text }: { id: string; title: string; text: string }) {
  const [copied, setCopied] = useState(false)
  return (
    <figure className="snippet">
      <figcaption>
        {title}{' '}
        <button
          type="button"
          onClick={() => {
            void navigator.clipboard?.writeText(text)
            setCopied(true)
          }}
        >
          {copied ? 'Copied' : 'Copy'}
        </button>
      </figcaption>
      <pre data-testid={`snippet-${id}`}>{text}</pre>
    </figure>
  )
}

/** The project's first flag, to fill the snippets with something that answers. */
function useSomeFlag(project: string, given?: GuideFlag): GuideFlag | null | undefined {
  const [flag, setFlag] = useState<GuideFlag | null | undefined>(given)
  useEffect(() => {
    if (given) return
    let live = true
    call(api.GET('/api/v1/projects/{project}/flags', { params: { path: { project }, query: { limit: 1 } } }))
      .then((l) => live && setFlag(l.items[0] ? { key: l.items[0].key, kind: l.items[0].kind as FlagKind } : null))
      .catch(() => live && setFlag(null))
    return () => {
      live = false
    }
  }, [project, given])
  return flag
}

/** Waits for the first use of SDK key `keyId`; `undefined` while waiting. */
function useLastSeen(project: string, env: string, keyId?: number): number | undefined {
  const [seen, setSeen] = useState<number>()
  useEffect(() => {
    setSeen(undefined)
    if (keyId === undefined) return
    let live = true
    let timer: ReturnType<typeof setTimeout> | undefined
    const poll = async () => {
      try {
        const keys = await call(
          api.GET('/api/v1/projects/{project}/environments/{env}/sdk-keys', { params: { path: { project, env } } }),
        )
        const at = keys.items.find((k) => k.id === keyId)?.last_seen_at
        if (!live) return
        if (at) {
          setSeen(at)
          return
        }
      } catch {
        // Try again on the next tick; the page shows other errors elsewhere.
      }
      if (live) timer = setTimeout(() => void poll(), POLL_MS)
    }
    void poll()
    return () => {
      live = false
      if (timer) clearTimeout(timer)
    }
  }, [project, env, keyId])
  return seen
}

export function ConnectGuide({
  project,
  env,
  envName,
  sdkKey,
  keyId,
}: {
  project: string
  env: string
  envName: string
  /** The key just created (shown once); without it the snippets read `$FLAGPOLE_SDK_KEY`. */
  sdkKey?: string
  /** The key to wait for. */
  keyId?: number
}) {
  const server = window.location.origin
  const flag = useSomeFlag(project)
  const seen = useLastSeen(project, env, keyId)
  const ep = endpoints(server)
  const input = { server, sdkKey: sdkKey ?? '$FLAGPOLE_SDK_KEY', flag: flag?.key ?? 'my-flag', kind: flag?.kind ?? 'boolean' }
  return (
    <section className="connect" aria-label={`Connect an application to ${envName}`}>
      <h3>Connect an application to {envName}</h3>
      {keyId !== undefined && (
        <p className={`connection ${seen ? 'on' : 'waiting'}`} role="status" data-testid="connection-state">
          {seen ? `Connected: last seen ${formatTime(seen)}` : 'Waiting for the first connection…'}
        </p>
      )}
      <dl className="endpoints">
        <dt>Server URL</dt>
        <dd><code>{ep.server}</code></dd>
        <dt>Stream (Rust SDK, WebSocket)</dt>
        <dd><code>{ep.stream}</code></dd>
        <dt>OFREP (OpenFeature remote evaluation)</dt>
        <dd><code>{ep.ofrep}</code></dd>
        <dt>SDK key</dt>
        <dd>{sdkKey ? <code>{sdkKey}</code> : <>An SDK key of {envName}, in <code>FLAGPOLE_SDK_KEY</code></>}</dd>
      </dl>
      {flag === null && (
        <p className="hint">
          The project has no flags yet: the snippets ask for <code>my-flag</code>.{' '}
          <Link to={`/p/${encodeURIComponent(project)}/flags`}>Create your first flag</Link>.
        </p>
      )}
      <Snippet id="curl" title="curl (OFREP)" text={curlSnippet(input)} />
      <Snippet id="node" title="Node.js (OpenFeature)" text={nodeSnippet(input)} />
      <Snippet id="rust" title="Rust (flagpole-sdk)" text={rustSnippet(input)} />
      <p>
        <a href={ep.docs} target="_blank" rel="noreferrer">API documentation</a> (every endpoint, with its
        request and answer).
      </p>
    </section>
  )
}

/** The flag page's "Use in code": this flag in each client, with the key from the environment. */
export function UseInCode({ project, flag, kind }: { project: string; flag: string; kind: string }) {
  const input = {
    server: window.location.origin,
    sdkKey: '$FLAGPOLE_SDK_KEY',
    flag,
    kind: (['boolean', 'string', 'number', 'json'].includes(kind) ? kind : 'json') as FlagKind,
  }
  return (
    <details className="card use-in-code">
      <summary>Use in code</summary>
      <p className="hint">
        <code>FLAGPOLE_SDK_KEY</code> is an SDK key of the environment to read:{' '}
        <Link to={`/p/${encodeURIComponent(project)}/environments`}>create one under Environments</Link>, which also
        shows whether your application has connected.
      </p>
      <Snippet id="flag-rust" title="Rust (flagpole-sdk)" text={rustSnippet(input)} />
      <Snippet id="flag-node" title="Node.js (OpenFeature)" text={nodeSnippet(input)} />
      <Snippet id="flag-curl" title="curl (OFREP)" text={curlSnippet(input)} />
    </details>
  )
}
