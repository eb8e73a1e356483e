import { describe, expect, it } from 'vitest'
import { ago, appLabel, chartData, totalEvaluations, variantLabel, type FlagInsights } from './shape'

const H = 3_600_000
const D = 24 * H
const base = Date.UTC(2026, 11, 7, 0, 0, 0)

function insights(over: Partial<FlagInsights>): FlagInsights {
  return {
    flag: 'checkout-v2',
    environment: 'production',
    granularity: 'hour',
    from: base,
    to: base + 4 * H,
    variants: [],
    reasons: [],
    apps: [],
    dropped: 0,
    last_evaluated: null,
    ...over,
  }
}

describe('chartData', () => {
  it('fills every bucket of the range, zeros where nothing was reported', () => {
    const d = chartData(
      insights({
        variants: [
          { variant: 'on', total: 10, points: [{ at: base + H, count: 7 }, { at: base + 3 * H, count: 3 }] },
          { variant: 'off', total: 5, points: [{ at: base, count: 5 }] },
        ],
      }),
    )
    expect(d.times).toEqual([0, 1, 2, 3].map((i) => (base + i * H) / 1000))
    expect(d.series.map((s) => [s.label, s.counts, s.total])).toEqual([
      ['on', [0, 7, 0, 3], 10],
      ['off', [5, 0, 0, 0], 5],
    ])
  })

  it('starts at the bucket holding `from` when the range starts mid-bucket', () => {
    const d = chartData(
      insights({
        from: base + 90 * 60_000,
        to: base + 3 * H + 1,
        variants: [{ variant: 'on', total: 2, points: [{ at: base + H, count: 2 }] }],
      }),
    )
    expect(d.times).toEqual([base + H, base + 2 * H, base + 3 * H].map((ms) => ms / 1000))
    expect(d.series[0].counts).toEqual([2, 0, 0])
  })

  it('buckets by day for day granularity and ignores points outside the range', () => {
    const d = chartData(
      insights({
        granularity: 'day',
        from: base - 2 * D,
        to: base + D,
        variants: [{ variant: '', total: 4, points: [{ at: base - D, count: 4 }, { at: base + 5 * D, count: 9 }] }],
      }),
    )
    expect(d.times).toHaveLength(3)
    expect(d.series[0]).toMatchObject({ label: '(error)', counts: [0, 4, 0] })
  })

  it('has no series when nothing was evaluated', () => {
    expect(chartData(insights({})).series).toEqual([])
  })
})

describe('labels', () => {
  it('totals evaluations across variants', () => {
    expect(
      totalEvaluations(insights({ variants: [{ variant: 'a', total: 3, points: [] }, { variant: 'b', total: 4, points: [] }] })),
    ).toBe(7)
  })

  it('names the error variant', () => {
    expect(variantLabel('')).toBe('(error)')
    expect(variantLabel('on')).toBe('on')
  })

  it('says how long ago', () => {
    const now = base + 10 * D
    expect(ago(now - 5_000, now)).toBe('just now')
    expect(ago(now + 5_000, now)).toBe('just now')
    expect(ago(now - 3 * 60_000, now)).toBe('3 min ago')
    expect(ago(now - 5 * H, now)).toBe('5 h ago')
    expect(ago(now - 3 * D, now)).toBe('3 d ago')
  })

  it('labels applications with or without a name and version', () => {
    const app = { app: 'checkout-web', app_version: '2.3.1', sdk: 'flagpole-rust/0.1.0', evaluations: 1, batches: 1, dropped: 0, first_seen: 0, last_seen: 0 }
    expect(appLabel(app)).toBe('checkout-web 2.3.1')
    expect(appLabel({ ...app, app_version: '' })).toBe('checkout-web')
    expect(appLabel({ ...app, app: '', app_version: '' })).toBe('(unnamed application)')
  })
})
