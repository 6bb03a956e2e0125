import type { Registry } from 'prom-client'
import { METRIC_NAMES } from '../../plugin/prometheus.js'

export interface LatencyBucket {
  /** `≤ 2.5 ms`, or `> 1 s` for the last. */
  label: string
  /** Lookups in this bucket alone (Prometheus counts cumulatively). */
  count: number
}

export interface LatencyHistogram {
  buckets: LatencyBucket[]
  total: number
  /** The largest bucket, for the bars' scale. */
  max: number
}

function formatSeconds (seconds: number): string {
  return seconds < 1 ? `${Number((seconds * 1000).toPrecision(3))} ms` : `${seconds} s`
}

/**
 * The cache's lookup latency over every route, per bucket, from the registry the metrics plugin fills: what the
 * dashboard shows beside the hit ratio.
 */
export async function lookupLatency (registry: Registry): Promise<LatencyHistogram> {
  const metric = registry.getSingleMetric(METRIC_NAMES.lookup)
  const cumulative = new Map<number, number>()
  for (const sample of (await metric?.get())?.values ?? []) {
    if (!(sample as { metricName?: string }).metricName?.endsWith('_bucket')) continue
    const le = sample.labels.le === '+Inf' ? Infinity : Number(sample.labels.le)
    cumulative.set(le, (cumulative.get(le) ?? 0) + sample.value)
  }
  const bounds = [...cumulative.keys()].sort((a, b) => a - b)
  const buckets: LatencyBucket[] = []
  let below = 0
  bounds.forEach((le, at) => {
    const upTo = cumulative.get(le) as number
    const label = Number.isFinite(le) ? `≤ ${formatSeconds(le)}` : `> ${formatSeconds(bounds[at - 1] as number)}`
    buckets.push({ label, count: upTo - below })
    below = upTo
  })
  return { buckets, total: below, max: Math.max(0, ...buckets.map((bucket) => bucket.count)) }
}
