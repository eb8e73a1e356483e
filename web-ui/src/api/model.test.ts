import { describe, expect, it } from 'vitest'
import { parseValues, percentToWeight, rolloutProblem, weightToPercent } from './model'

describe('rollout sum validation', () => {
  it('accepts weights adding up to exactly 100%', () => {
    expect(
      rolloutProblem([
        { variant: 'on', weight: percentToWeight(30) },
        { variant: 'off', weight: percentToWeight(70) },
      ]),
    ).toBeNull()
  })
  it('names the actual total when it is not 100%', () => {
    expect(rolloutProblem([{ variant: 'on', weight: 30_000 }, { variant: 'off', weight: 0 }])).toMatch(
      /add up to 30%.*must add up to 100%/,
    )
    expect(rolloutProblem([{ variant: 'on', weight: 60_000 }, { variant: 'off', weight: 60_000 }])).toMatch(/120%/)
  })
  it('refuses negative and empty rollouts', () => {
    expect(rolloutProblem([])).toMatch(/at least one/)
    expect(rolloutProblem([{ variant: 'on', weight: -1 }, { variant: 'off', weight: 100_001 }])).toMatch(/negative/)
  })
  it('converts thousandths of a percent without floating-point drift', () => {
    expect(percentToWeight(33.333)).toBe(33_333)
    expect(percentToWeight(0.1) + percentToWeight(99.9)).toBe(100_000)
    expect(weightToPercent(12_500)).toBe(12.5)
  })
})

describe('clause values', () => {
  it('types values by operator', () => {
    expect(parseValues('in', 'pro, 42, true, "7"')).toEqual(['pro', 42, true, '7'])
    expect(parseValues('gte', '3, x')).toEqual([3, 'x'])
    expect(parseValues('starts_with', '1.2, ')).toEqual(['1.2'])
  })
})
