import { expect, it } from 'vitest'
import { curlSnippet, endpoints, nodeSnippet, rustSnippet } from './snippets'

const input = { server: 'http://127.0.0.1:8080/', sdkKey: 'fp_sdk_abc', flag: 'checkout-v2', kind: 'boolean' as const }

it('names the endpoints of the server', () => {
  expect(endpoints(input.server)).toEqual({
    server: 'http://127.0.0.1:8080',
    stream: 'ws://127.0.0.1:8080/sdk/v1/stream',
    ofrep: 'http://127.0.0.1:8080/ofrep/v1/evaluate/flags/{key}',
    docs: 'http://127.0.0.1:8080/docs',
  })
  expect(endpoints('https://flags.example.com').stream).toBe('wss://flags.example.com/sdk/v1/stream')
})

it('fills the snippets with the key and the flag', () => {
  const curl = curlSnippet(input)
  expect(curl).toContain("'http://127.0.0.1:8080/ofrep/v1/evaluate/flags/checkout-v2'")
  expect(curl).toContain("-H 'Authorization: Bearer fp_sdk_abc'")
  expect(nodeSnippet(input)).toContain("client.getBooleanValue(\"checkout-v2\", false")
  expect(nodeSnippet({ ...input, kind: 'string' })).toContain('getStringValue')
  expect(rustSnippet(input)).toContain('Client::builder("http://127.0.0.1:8080", "fp_sdk_abc")')
  expect(rustSnippet({ ...input, kind: 'number' })).toContain('client.number_value("checkout-v2"')
})

it('leaves a placeholder key to the environment', () => {
  const placeholder = { ...input, sdkKey: '$FLAGPOLE_SDK_KEY' }
  expect(curlSnippet(placeholder)).toContain('-H "Authorization: Bearer $FLAGPOLE_SDK_KEY"')
  expect(nodeSnippet(placeholder)).toContain('${process.env.FLAGPOLE_SDK_KEY}')
  expect(rustSnippet(placeholder)).toContain('std::env::var("FLAGPOLE_SDK_KEY")?')
})

it('quotes for the shell', () => {
  expect(curlSnippet({ ...input, sdkKey: "it's" })).toContain(`'Authorization: Bearer it'\\''s'`)
})
