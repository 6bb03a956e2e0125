import type { StatsSample } from './stats-history.js'

export interface ChartOptions {
  width?: number
  height?: number
  /** Milliseconds between samples, to place them on the time axis. */
  intervalMs: number
  /** Samples the chart has room for. */
  capacity: number
  now: number
}

const PAD = { left: 44, right: 12, top: 12, bottom: 28 }

function round (n: number): string {
  return (Math.round(n * 10) / 10).toString()
}

/**
 * The hit ratio per interval as an inline SVG line chart, newest on the right. Only numbers and fixed text go
 * into the markup, so it can be inserted unescaped. Intervals without lookups leave a gap in the line.
 */
export function hitRatioChart (samples: readonly StatsSample[], options: ChartOptions): string {
  const width = options.width ?? 640
  const height = options.height ?? 200
  const plotW = width - PAD.left - PAD.right
  const plotH = height - PAD.top - PAD.bottom
  const spanMs = options.intervalMs * Math.max(1, options.capacity - 1)
  const x = (at: number): number => PAD.left + plotW * (1 - Math.min(1, Math.max(0, (options.now - at) / spanMs)))
  const y = (ratio: number): number => PAD.top + plotH * (1 - ratio)

  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 ${width} ${height}" width="${width}" ` +
      `height="${height}" role="img" aria-labelledby="chart-title">`,
    '<title id="chart-title">Cache hit ratio per interval</title>',
    `<rect x="${PAD.left}" y="${PAD.top}" width="${plotW}" height="${plotH}" fill="#fafafa" stroke="#ccc"/>`
  ]
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    const ty = round(y(tick))
    parts.push(`<line x1="${PAD.left}" y1="${ty}" x2="${PAD.left + plotW}" y2="${ty}" stroke="#e5e5e5"/>`,
      `<text x="${PAD.left - 6}" y="${ty}" font-size="11" text-anchor="end" dominant-baseline="middle" ` +
      `fill="#555">${tick * 100}%</text>`)
  }
  const minutes = Math.round(spanMs / 60_000)
  parts.push(`<text x="${PAD.left}" y="${height - 8}" font-size="11" fill="#555">${minutes} min ago</text>`,
    `<text x="${PAD.left + plotW}" y="${height - 8}" font-size="11" text-anchor="end" fill="#555">now</text>`)

  // Consecutive samples with lookups form one segment; an idle interval breaks the line.
  const segments: Array<Array<[number, number]>> = []
  let current: Array<[number, number]> = []
  for (const sample of samples) {
    if (sample.ratio === null || options.now - sample.at > spanMs) {
      if (current.length > 0) segments.push(current)
      current = []
      continue
    }
    current.push([x(sample.at), y(sample.ratio)])
  }
  if (current.length > 0) segments.push(current)

  for (const points of segments) {
    if (points.length === 1) {
      const [px, py] = points[0] as [number, number]
      parts.push(`<circle class="point" cx="${round(px)}" cy="${round(py)}" r="3" fill="#2a6f97"/>`)
    } else {
      parts.push(`<polyline class="ratio" fill="none" stroke="#2a6f97" stroke-width="2" points="${
        points.map(([px, py]) => `${round(px)},${round(py)}`).join(' ')}"/>`)
      for (const [px, py] of points) parts.push(`<circle class="vertex" cx="${round(px)}" cy="${round(py)}" r="2" fill="#2a6f97"/>`)
    }
  }
  if (segments.length === 0) {
    parts.push(`<text x="${PAD.left + plotW / 2}" y="${PAD.top + plotH / 2}" font-size="13" text-anchor="middle" ` +
      'fill="#777">no lookups yet: the chart fills in as pages are served</text>')
  }
  parts.push('</svg>')
  return parts.join('')
}
