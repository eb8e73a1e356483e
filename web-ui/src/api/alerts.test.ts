import { describe, expect, it } from 'vitest'
import { matcherText, matchersToSend, outcomeWords, receiverSnippet, webhookUrl } from './alerts'

describe('alert mappings in words', () => {
  it('writes matchers as Alertmanager does', () => {
    expect(matcherText({ label: 'service', op: '=', value: 'checkout' })).toBe('service="checkout"')
    expect(matcherText({ label: 'severity', op: '=~', value: 'page|"crit"' })).toBe('severity=~"page|\\"crit\\""')
  })
  it('words outcomes', () => {
    expect(outcomeWords('turned_off')).toEqual({ words: 'turned off', badge: 'off' })
    expect(outcomeWords('failed').words).toBe('failed')
  })
  it('gives the webhook and a receiver for it', () => {
    expect(webhookUrl('https://flags.example', 'shop')).toBe('https://flags.example/api/v1/projects/shop/alerts/alertmanager')
    const snippet = receiverSnippet('https://flags.example', 'shop')
    expect(snippet).toContain('url: https://flags.example/api/v1/projects/shop/alerts/alertmanager')
    expect(snippet).toContain('credentials_file: /etc/alertmanager/flagpole-shop.token')
  })
  it('drops blank matcher rows only', () => {
    const rows = [
      { label: '', op: '=' as const, value: '' },
      { label: 'env', op: '!=' as const, value: '' },
    ]
    expect(matchersToSend(rows)).toEqual([{ label: 'env', op: '!=', value: '' }])
  })
})
