// Alert mappings in words: matchers as Alertmanager writes them, outcomes, the webhook's
// address and the Alertmanager receiver that calls it (docs/alerts.md).
import type { Schemas } from './client'

export type AlertMapping = Schemas['AlertMapping']
export type LabelMatcher = Schemas['LabelMatcher']
export type LabelMatchOp = Schemas['LabelMatchOp']
export type AlertOutcome = Schemas['AlertOutcome']

/** The operators, in Alertmanager's order. */
export const MATCH_OPS: { value: LabelMatchOp; label: string }[] = [
  { value: '=', label: '= equals' },
  { value: '!=', label: '!= differs' },
  { value: '=~', label: '=~ matches regex' },
  { value: '!~', label: '!~ does not match' },
]

/** `service="checkout"`, as in Alertmanager's routes. */
export function matcherText(m: LabelMatcher): string {
  return `${m.label}${m.op}${JSON.stringify(m.value)}`
}

/** What a firing came to, in a few words, and the badge class that colours it. */
export function outcomeWords(outcome: AlertOutcome): { words: string; badge: string } {
  switch (outcome) {
    case 'turned_off':
      return { words: 'turned off', badge: 'off' }
    case 'already_off':
      return { words: 'already off', badge: '' }
    case 'failed':
      return { words: 'failed', badge: 'partial' }
  }
}

/** The project's webhook, as Alertmanager must call it. */
export function webhookUrl(origin: string, project: string): string {
  return `${origin}/api/v1/projects/${encodeURIComponent(project)}/alerts/alertmanager`
}

/** The Alertmanager receiver for the project (route it with `flagpole_project`). */
export function receiverSnippet(origin: string, project: string): string {
  return [
    'receivers:',
    `  - name: flagpole-${project}`,
    '    webhook_configs:',
    `      - url: ${webhookUrl(origin, project)}`,
    '        send_resolved: false',
    '        http_config:',
    '          authorization:',
    '            type: Bearer',
    `            credentials_file: /etc/alertmanager/flagpole-${project}.token`,
  ].join('\n')
}

/** Matcher rows as the form holds them: rows left entirely blank are not sent. */
export function matchersToSend(rows: LabelMatcher[]): LabelMatcher[] {
  return rows.filter((m) => m.label.trim() !== '' || m.value !== '')
}
