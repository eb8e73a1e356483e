// Pure shaping of the insights API's answer for the page: the sparse per-variant series
// become the aligned columns a chart draws (every bucket of the range, zeros where no SDK
// reported), and the small labels the tables show. Kept free of React and the chart
// library so that vitest checks it directly.
import type { Schemas } from '../api/client'

export type FlagInsights = Schemas['FlagInsights']
export type Granularity = Schemas['Granularity']
export type ConnectedApp = Schemas['ConnectedApp']

const HOUR_MS = 3_600_000
const DAY_MS = 24 * HOUR_MS

export function bucketMillis(g: Granularity): number {
  return g === 'day' ? DAY_MS : HOUR_MS
}

/** One line of the chart: a variant and its count in every bucket. */
export interface ChartSeries {
  variant: string
  label: string
  total: number
  counts: number[]
}

/** Columns for the chart: bucket starts (epoch seconds, as uPlot's time axis wants) and one
 * series per variant, each as long as `times`. */
export interface ChartData {
  times: number[]
  series: ChartSeries[]
}

/** What a variant is called on the page: evaluations that errored carry no variant. */
export function variantLabel(variant: string): string {
  return variant === '' ? '(error)' : variant
}

/** Every bucket from the one holding `from` up to `to` (exclusive), each variant's counts
 * placed in their bucket and the gaps filled with 0: a line that only joined reported
 * points would draw a steady rate through hours when nothing was evaluated. */
export function chartData(insights: FlagInsights): ChartData {
  const step = bucketMillis(insights.granularity)
  const first = insights.from - (((insights.from % step) + step) % step)
  const starts: number[] = []
  for (let at = first; at < insights.to; at += step) starts.push(at)
  const index = new Map(starts.map((at, i) => [at, i]))
  const series = insights.variants.map((v) => {
    const counts = new Array<number>(starts.length).fill(0)
    for (const p of v.points) {
      const i = index.get(p.at)
      // A point outside the range cannot come from the server, which queries the range;
      // dropping it keeps the columns aligned rather than stretching the axis.
      if (i !== undefined) counts[i] += p.count
    }
    return { variant: v.variant, label: variantLabel(v.variant), total: v.total, counts }
  })
  return { times: starts.map((ms) => ms / 1000), series }
}

/** Evaluations in the range across variants. */
export function totalEvaluations(insights: FlagInsights): number {
  return insights.variants.reduce((n, v) => n + v.total, 0)
}

/** "3 min ago", "2 h ago", "5 d ago"; "just now" under a minute (clock skew included). */
export function ago(thenMs: number, nowMs: number): string {
  const s = Math.floor((nowMs - thenMs) / 1000)
  if (s < 60) return 'just now'
  const m = Math.floor(s / 60)
  if (m < 60) return `${m} min ago`
  const h = Math.floor(m / 60)
  if (h < 48) return `${h} h ago`
  return `${Math.floor(h / 24)} d ago`
}

/** An application's name as people call it: its configured name and version, or the SDK
 * when the application did not name itself. */
export function appLabel(app: ConnectedApp): string {
  const name = app.app || '(unnamed application)'
  return app.app_version ? `${name} ${app.app_version}` : name
}
