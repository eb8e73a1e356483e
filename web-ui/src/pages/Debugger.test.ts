import { expect, it } from 'vitest'
import type { DebugResult } from '../api/client'
import { reasonText } from './Debugger'

const match = (extra: Partial<DebugResult>): DebugResult =>
  ({ flag: 'f', reason: 'RULE_MATCH', rule_index: 0, rule_id: 'rule-1', in_rollout: false, ...extra }) as DebugResult

it('names a matched rule by its description, never by its generated id', () => {
  expect(reasonText(match({ rule_description: 'Paying customers' }))).toBe('Rule 1, “Paying customers”, matched')
  expect(reasonText(match({ rule_index: 2, in_rollout: true }))).toBe('Rule 3 matched, rollout bucket decided')
  expect(reasonText(match({}))).not.toContain('rule-1')
})
