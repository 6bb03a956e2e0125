// Figures computed from the loader's per-response samples.
import { readFileSync } from 'node:fs'
import type { LoadSamples } from '../loader.js'

export function readSamples (file: string): LoadSamples {
  return JSON.parse(readFileSync(file, 'utf8')) as LoadSamples
}

/** The q-th percentile (0..100) by nearest rank; NaN for no values. */
export function percentile (values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((q / 100) * sorted.length) - 1))
  return sorted[rank] as number
}

export interface WindowFigures {
  requests: number
  rps: number
  p50: number
  p99: number
  max: number
  non2xx: number
  /** x-cache initials: H(IT), M(ISS), B(YPASS), S(TALE), - (none). */
  cache: Record<string, number>
}

/**
 * Responses to requests that *started* in [from, to) (start = completion - latency), so a request that began during
 * an outage counts for the outage even when it finished after.
 */
export function windowOf (samples: LoadSamples, from: number, to: number): WindowFigures {
  const latencies: number[] = []
  const cache: Record<string, number> = {}
  let non2xx = 0
  for (let i = 0; i < samples.t.length; i++) {
    const latency = samples.latency[i] as number
    const start = (samples.t[i] as number) - latency
    if (start < from || start >= to) continue
    latencies.push(latency)
    const status = samples.status[i] as number
    if (status < 200 || status > 299) non2xx++
    const code = samples.cache.charAt(i) || '-'
    cache[code] = (cache[code] ?? 0) + 1
  }
  const seconds = Math.max(0.001, (to - from) / 1000)
  return {
    requests: latencies.length,
    rps: Math.round(latencies.length / seconds),
    p50: round(percentile(latencies, 50)),
    p99: round(percentile(latencies, 99)),
    max: round(latencies.reduce((max, value) => Math.max(max, value), latencies.length === 0 ? Number.NaN : 0)),
    non2xx,
    cache
  }
}

export function round (value: number, digits = 1): number {
  const scale = 10 ** digits
  return Math.round(value * scale) / scale
}

export function cacheMix (cache: Record<string, number>): string {
  const names: Record<string, string> = { H: 'HIT', M: 'MISS', B: 'BYPASS', S: 'STALE', '-': 'none' }
  return Object.entries(cache).sort((a, b) => b[1] - a[1]).map(([code, count]) => `${names[code] ?? code} ${count}`).join(', ')
}
