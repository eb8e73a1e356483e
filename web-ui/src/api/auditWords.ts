// Audit actions in words ("turned on", "renamed a variant of"), and the action filter's
// choices. The raw action (`flag.toggle`) stays visible beside the words for whoever
// queries the API with it.

interface Entry {
  action: string
  after?: unknown
  before?: unknown
}

const WORDS: Record<string, string> = {
  'flag.create': 'created flag',
  'flag.update': 'changed the definition of flag',
  'flag.variant_rename': 'renamed a variant of flag',
  'flag.archive': 'archived flag',
  'flag.unarchive': 'restored flag',
  'flag.revert': 'reverted flag',
  'flag_config.update': 'changed the targeting of flag',
  'segment.create': 'created segment',
  'segment.update': 'changed segment',
  'segment.delete': 'deleted segment',
  'environment.create': 'created environment',
  'environment.update': 'changed environment',
  'environment.delete': 'deleted environment',
  // Written by migrations 0008 and 0010, which rewrote keys that were not URL segments.
  'environment.rename': 'renamed environment',
  'project.create': 'created project',
  'project.update': 'changed project',
  'project.lifetimes_update': 'changed the flag lifetimes of project',
  'project.delete': 'deleted project',
  'project.rename': 'renamed project',
  'api_token.create': 'created API token',
  'api_token.revoke': 'revoked API token',
  'sdk_key.create': 'created SDK key',
  'sdk_key.revoke': 'revoked SDK key',
  'user.create': 'created user',
  'user.update': 'changed user',
  'user.delete': 'deleted user',
  'alert_mapping.create': 'created alert mapping',
  'alert_mapping.update': 'changed alert mapping',
  'alert_mapping.delete': 'deleted alert mapping',
  'alert_mapping.fire': 'acted on an alert with mapping',
}

/** What an entry did, in words: "turned off flag", "created segment". */
export function actionWords(e: Entry): string {
  if (e.action === 'flag.toggle') {
    const enabled = (e.after as { enabled?: unknown } | null | undefined)?.enabled
    return enabled === true ? 'turned on flag' : enabled === false ? 'turned off flag' : 'switched flag'
  }
  const known = WORDS[e.action]
  if (known) return known
  // An action this dashboard does not know yet: its parts, readable.
  const [resource, verb] = e.action.split('.')
  return verb ? `${verb.replace(/_/g, ' ')} ${resource.replace(/_/g, ' ')}` : e.action.replace(/_/g, ' ')
}

/** The action filter's choices: `value` is what the API's `action` parameter takes. */
export const ACTION_CHOICES: { value: string; label: string }[] = [
  { value: '', label: 'All actions' },
  { value: 'flag', label: 'Any flag change' },
  { value: 'flag.toggle', label: 'Turned on or off' },
  { value: 'flag_config.update', label: 'Targeting changed' },
  { value: 'flag.create', label: 'Flag created' },
  { value: 'flag.update', label: 'Flag definition changed' },
  { value: 'flag.variant_rename', label: 'Variant renamed' },
  { value: 'flag.archive', label: 'Flag archived' },
  { value: 'flag.unarchive', label: 'Flag restored' },
  { value: 'flag.revert', label: 'Flag reverted' },
  { value: 'segment', label: 'Any segment change' },
  { value: 'environment', label: 'Any environment change' },
  { value: 'project', label: 'Any project change' },
  { value: 'alert_mapping', label: 'Alert mappings and what they did' },
  { value: 'sdk_key', label: 'SDK keys' },
  { value: 'api_token', label: 'API tokens' },
  { value: 'user', label: 'Users' },
]

/** Epoch ms of the start of a `yyyy-mm-dd` day in local time; `endOf` gives the next day's start. */
export function dayStart(day: string, endOf = false): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day)
  if (!m) return undefined
  return new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]) + (endOf ? 1 : 0)).getTime()
}
