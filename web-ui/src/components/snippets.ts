// Copy-paste code for connecting an application: the server's endpoints and snippets filled
// in with an SDK key and a flag key. Pure functions of their inputs, so the connect guide,
// the flag page and their tests show the same text the browser scenario runs.

export type FlagKind = 'boolean' | 'string' | 'number' | 'json'

export interface SnippetInput {
  /** The server's base URL as the browser sees it, e.g. `http://localhost:8080`. */
  server: string
  /** An SDK key, or a placeholder such as `$FLAGPOLE_SDK_KEY`. */
  sdkKey: string
  flag: string
  kind: FlagKind
}

export interface Endpoints {
  server: string
  stream: string
  ofrep: string
  docs: string
}

export function endpoints(server: string): Endpoints {
  const base = server.replace(/\/+$/, '')
  return {
    server: base,
    stream: base.replace(/^http/, 'ws') + '/sdk/v1/stream',
    ofrep: base + '/ofrep/v1/evaluate/flags/{key}',
    docs: base + '/docs',
  }
}

/** Quotes `s` for a POSIX shell (single quotes; a quote inside becomes '\''). */
function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`
}

/** A key placeholder such as `$FLAGPOLE_SDK_KEY` stays expandable in the shell. */
function shellKey(sdkKey: string): string {
  return sdkKey.startsWith('$') ? `"Authorization: Bearer ${sdkKey}"` : shellQuote(`Authorization: Bearer ${sdkKey}`)
}

/** OFREP over curl: evaluates one flag for one user. */
export function curlSnippet({ server, sdkKey, flag }: SnippetInput): string {
  const url = `${endpoints(server).server}/ofrep/v1/evaluate/flags/${encodeURIComponent(flag)}`
  return [
    `curl -sS -X POST ${shellQuote(url)} \\`,
    `  -H ${shellKey(sdkKey)} \\`,
    `  -H 'Content-Type: application/json' \\`,
    `  -d '{"context": {"targetingKey": "user-1"}}'`,
  ].join('\n')
}

const NODE_GETTER: Record<FlagKind, [string, string]> = {
  boolean: ['getBooleanValue', 'false'],
  string: ['getStringValue', "''"],
  number: ['getNumberValue', '0'],
  json: ['getObjectValue', '{}'],
}

/** The OpenFeature Node server SDK with the OFREP provider. */
export function nodeSnippet({ server, sdkKey, flag, kind }: SnippetInput): string {
  const [getter, fallback] = NODE_GETTER[kind]
  const key = sdkKey.startsWith('$') ? `process.env.${sdkKey.slice(1)}` : JSON.stringify(sdkKey)
  return [
    `// npm install @openfeature/server-sdk @openfeature/ofrep-provider`,
    `import { OpenFeature } from '@openfeature/server-sdk'`,
    `import { OFREPProvider } from '@openfeature/ofrep-provider'`,
    ``,
    `await OpenFeature.setProviderAndWait(`,
    `  new OFREPProvider({`,
    `    baseUrl: ${JSON.stringify(endpoints(server).server)},`,
    `    headers: [['Authorization', \`Bearer \${${key}}\`]],`,
    `  }),`,
    `)`,
    `const client = OpenFeature.getClient()`,
    `const value = await client.${getter}(${JSON.stringify(flag)}, ${fallback}, { targetingKey: 'user-1' })`,
    `console.log(${JSON.stringify(flag)}, value)`,
  ].join('\n')
}

const RUST_GETTER: Record<FlagKind, [string, string]> = {
  boolean: ['bool_value', 'false'],
  string: ['string_value', '""'],
  number: ['number_value', '0.0'],
  json: ['json_value', 'serde_json::Value::Null'],
}

/** The Rust SDK: streams the environment and evaluates locally. */
export function rustSnippet({ server, sdkKey, flag, kind }: SnippetInput): string {
  const [getter, fallback] = RUST_GETTER[kind]
  const key = sdkKey.startsWith('$') ? `std::env::var(${JSON.stringify(sdkKey.slice(1))})?` : JSON.stringify(sdkKey)
  return [
    `// Cargo.toml: flagpole-sdk, tokio (features "macros", "rt-multi-thread")`,
    `use std::time::Duration;`,
    `use flagpole_sdk::{Client, Context};`,
    ``,
    `#[tokio::main]`,
    `async fn main() -> Result<(), Box<dyn std::error::Error>> {`,
    `    let client = Client::builder(${JSON.stringify(endpoints(server).server)}, ${key}).build()?;`,
    `    // Fails at once with "SDK key rejected: invalid or revoked" for a bad key.`,
    `    client.wait_until_ready(Duration::from_secs(5)).await?;`,
    `    let value = client.${getter}(${JSON.stringify(flag)}, &Context::new("user-1"), ${fallback});`,
    `    println!("${flag.replace(/[{}"\\]/g, '')} = {value:?}");`,
    `    client.close().await;`,
    `    Ok(())`,
    `}`,
  ].join('\n')
}
