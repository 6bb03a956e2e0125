import type { FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { Counter, Gauge, Histogram, register as globalRegistry, type Registry } from 'prom-client'
import type { CacheLabel } from './cache-status.js'
import { invalidOption } from './errors.js'
// For the `fastify.cache` declaration only: a type import, so the plugin's code is not loaded twice.
import type {} from './index.js'
import type { CacheObserver } from './observers.js'
import { RouteLabels } from './route-labels.js'
import type { CacheStats } from './stats.js'

// `fastify-cache/prometheus`: the one module that imports prom-client (an optional peer), so that the plugin itself
// runs without it.

export interface PrometheusOptions {
  /** Where the metrics are registered. Default: prom-client's global registry. One app per registry. */
  registry?: Registry
  /** Distinct `route` labels kept; the routes seen after these are counted under `other`. Default 100. */
  maxRoutes?: number
  /** Upper bounds of the lookup latency buckets, in seconds, increasing. */
  lookupBuckets?: number[]
  /** Upper bounds of the handler (compute) latency buckets, in seconds, increasing. */
  computeBuckets?: number[]
}

export const DEFAULT_MAX_ROUTES = 100
export const DEFAULT_LOOKUP_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1]
export const DEFAULT_COMPUTE_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
/** Publish to delivery on the bus: a purge that takes longer leaves another instance serving the old page meanwhile. */
export const BUS_DELAY_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]

export const METRIC_NAMES = {
  responses: 'fastify_cache_responses_total',
  l1Hits: 'fastify_cache_l1_hits_total',
  coalesced: 'fastify_cache_coalesced_total',
  errors: 'fastify_cache_errors_total',
  lookup: 'fastify_cache_lookup_duration_seconds',
  compute: 'fastify_cache_compute_duration_seconds',
  busDelay: 'fastify_cache_bus_delay_seconds',
  breaker: 'fastify_cache_breaker_state',
  busConnected: 'fastify_cache_bus_connected'
} as const

/** The `result` label of `fastify_cache_responses_total`: `x-cache`, lower-cased. */
const RESULTS: Record<CacheLabel, string> = { HIT: 'hit', MISS: 'miss', BYPASS: 'bypass', STALE: 'stale' }
/** `fastify_cache_breaker_state`: 0 closed, 1 half-open, 2 open. */
export const BREAKER_STATES: Record<CacheStats['breaker'], number> = { closed: 0, 'half-open': 1, open: 2 }

const OPTION_NAMES = new Set(['registry', 'maxRoutes', 'lookupBuckets', 'computeBuckets'])

interface NormalizedPrometheusOptions {
  registry: Registry
  maxRoutes: number
  lookupBuckets: number[]
  computeBuckets: number[]
}

function buckets (value: unknown, name: string, fallback: readonly number[]): number[] {
  if (value === undefined) return [...fallback]
  const valid = Array.isArray(value) && value.length > 0 &&
    value.every((bound, at) => Number.isFinite(bound) && bound > 0 && (at === 0 || bound > value[at - 1]))
  if (!valid) throw invalidOption(name, 'expected a non-empty array of increasing positive numbers (seconds)')
  return [...value as number[]]
}

function isRegistry (value: unknown): value is Registry {
  const registry = value as Partial<Registry> | null
  return typeof registry?.registerMetric === 'function' && typeof registry.getSingleMetric === 'function' &&
    typeof registry.removeSingleMetric === 'function'
}

/** Checks the options at registration: a bad one fails startup with FST_CACHE_INVALID_OPTION naming it. */
export function normalizePrometheusOptions (input: PrometheusOptions = {}): NormalizedPrometheusOptions {
  for (const name of Object.keys(input)) {
    if (!OPTION_NAMES.has(name)) throw invalidOption(name, 'unknown option of fastify-cache/prometheus')
  }
  const registry = input.registry ?? globalRegistry
  if (!isRegistry(registry)) throw invalidOption('registry', 'expected a prom-client Registry')
  const taken = Object.values(METRIC_NAMES).find((name) => registry.getSingleMetric(name) !== undefined)
  if (taken !== undefined) {
    throw invalidOption('registry', `already holds ${taken}: give each app its own Registry (or close the other app first)`)
  }
  const maxRoutes = input.maxRoutes ?? DEFAULT_MAX_ROUTES
  if (!Number.isInteger(maxRoutes) || maxRoutes < 1) throw invalidOption('maxRoutes', 'expected a positive integer')
  return {
    registry,
    maxRoutes,
    lookupBuckets: buckets(input.lookupBuckets, 'lookupBuckets', DEFAULT_LOOKUP_BUCKETS),
    computeBuckets: buckets(input.computeBuckets, 'computeBuckets', DEFAULT_COMPUTE_BUCKETS)
  }
}

/** The cache's metrics in one registry, fed by a cache observer; the gauges read the cache's state when scraped. */
export class CacheMetrics {
  readonly observer: CacheObserver
  readonly #registry: Registry

  constructor (options: NormalizedPrometheusOptions, stats: () => CacheStats) {
    const registers = [options.registry]
    this.#registry = options.registry
    const routes = new RouteLabels(options.maxRoutes)
    const responses = new Counter({
      name: METRIC_NAMES.responses, help: 'Responses of cached routes, by route pattern and x-cache result', labelNames: ['route', 'result'], registers
    })
    const l1Hits = new Counter({ name: METRIC_NAMES.l1Hits, help: 'Hits served from process memory (L1)', labelNames: ['route'], registers })
    const coalesced = new Counter({
      name: METRIC_NAMES.coalesced, help: 'Hits that waited for another request computing the page', labelNames: ['route'], registers
    })
    const errors = new Counter({ name: METRIC_NAMES.errors, help: 'Store failures, timeouts and unreadable entries', registers })
    const lookup = new Histogram({
      name: METRIC_NAMES.lookup, help: 'Page lookups past L1: store read and waiting', labelNames: ['route'], buckets: options.lookupBuckets, registers
    })
    const compute = new Histogram({
      name: METRIC_NAMES.compute, help: 'Handler runs of misses', labelNames: ['route'], buckets: options.computeBuckets, registers
    })
    const busDelay = new Histogram({
      name: METRIC_NAMES.busDelay, help: 'Invalidations from other instances: publish to delivery', buckets: [...BUS_DELAY_BUCKETS], registers
    })
    // Read when scraped: the breaker and the bus change state without an event of their own.
    const gauges = [
      { name: METRIC_NAMES.breaker, help: 'Circuit breaker: 0 closed, 1 half-open, 2 open', read: () => BREAKER_STATES[stats().breaker] },
      { name: METRIC_NAMES.busConnected, help: 'Invalidation bus subscribed: 1, else 0 (down, or no bus)', read: () => stats().bus?.connected === true ? 1 : 0 }
    ]
    for (const { name, help, read } of gauges) {
      new Gauge({ name, help, registers, collect () { this.set(read()) } }) // eslint-disable-line no-new -- kept by the registry
    }
    this.observer = {
      response ({ route, label, from }) {
        const bounded = routes.of(route)
        responses.inc({ route: bounded, result: RESULTS[label] })
        if (from === 'l1') l1Hits.inc({ route: bounded })
        else if (from === 'coalesced') coalesced.inc({ route: bounded })
      },
      lookup ({ route, durationMs }) { lookup.observe({ route: routes.of(route) }, durationMs / 1000) },
      compute ({ route, durationMs }) { compute.observe({ route: routes.of(route) }, durationMs / 1000) },
      error () { errors.inc() },
      busDelivery (delayMs) { busDelay.observe(delayMs / 1000) }
    }
  }

  /** Takes the metrics out of the registry, so that an app built again (tests, restarts in process) can register. */
  unregister (): void {
    for (const name of Object.values(METRIC_NAMES)) this.#registry.removeSingleMetric(name)
  }
}

const fastifyCachePrometheusPlugin: FastifyPluginAsync<PrometheusOptions> = async (fastify, input) => {
  const options = normalizePrometheusOptions(input)
  const metrics = new CacheMetrics(options, () => fastify.cache.stats())
  const stop = fastify.cache.observe(metrics.observer)
  fastify.addHook('onClose', async () => {
    stop()
    metrics.unregister()
  })
}

/** Prometheus metrics of fastify-cache; register it after fastify-cache. */
export const fastifyCachePrometheus = fp(fastifyCachePrometheusPlugin, {
  fastify: '5.x', name: 'fastify-cache-prometheus', dependencies: ['fastify-cache']
})
export default fastifyCachePrometheus
