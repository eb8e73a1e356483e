// Evaluations per variant over time, drawn by uPlot (bundled from npm; a canvas chart of
// ~50 kB with no dependencies). The chart is rebuilt when the data changes: the page
// refreshes at most every 30 s, so rebuilding is cheaper to reason about than patching.
import { useEffect, useRef } from 'react'
import uPlot from 'uplot'
import 'uplot/dist/uPlot.min.css'
import type { ChartData, Granularity } from '../insights/shape'

/** Distinguishable colours, in variant order. */
const COLOURS = ['#1570ef', '#dd2590', '#12b76a', '#f79009', '#7a5af8', '#667085', '#0e9384', '#d92d20']

export function InsightsChart({ data, granularity, title }: { data: ChartData; granularity: Granularity; title: string }) {
  const box = useRef<HTMLDivElement>(null)
  useEffect(() => {
    const el = box.current
    if (!el) return
    const opts: uPlot.Options = {
      title,
      width: Math.max(320, el.clientWidth),
      height: 280,
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
      axes: [{}, { label: 'evaluations', size: 60 }],
      series: [
        { label: granularity === 'day' ? 'Day' : 'Hour' },
        ...data.series.map((s, i) => ({
          label: s.label,
          stroke: COLOURS[i % COLOURS.length],
          width: 2,
          points: { show: true, size: 5 },
        })),
      ],
    }
    const chart = new uPlot(opts, [data.times, ...data.series.map((s) => s.counts)], el)
    // Follows the page's width (the narrow layout included).
    const resize = new ResizeObserver(() => chart.setSize({ width: Math.max(320, el.clientWidth), height: 280 }))
    resize.observe(el)
    return () => {
      resize.disconnect()
      chart.destroy()
    }
  }, [data, granularity, title])
  return <div ref={box} className="insights-chart" data-testid="insights-chart" role="img" aria-label={title} />
}
