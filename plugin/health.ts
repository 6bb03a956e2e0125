import type { BreakerState } from './breaker.js'
import type { CacheEngine } from './engine.js'
import { RedisStore } from './stores/redis.js'
import { withTimeout } from './timeout.js'

/** How long `health()` waits for the store by default: short, for a load balancer's probe. */
export const DEFAULT_HEALTH_TIMEOUT_MS = 500

/** What `fastify.cache.health()` reports, for a `/healthz` route. */
export interface CacheHealth {
  /** Whether the store answered within the budget: a PING for Redis, a read of a reserved key for other stores. */
  store: 'up' | 'down'
  /** The invalidation bus's subscription; 'off' when the plugin runs without a bus. */
  bus: 'up' | 'down' | 'off'
  /** The circuit breaker in front of the store: 'open' while lookups skip it. */
  breaker: BreakerState
}

/**
 * Asks the store directly, past the breaker and uncounted: a health probe must say how the store is now, even while
 * the breaker keeps requests away from it, and must not open the breaker itself.
 */
export async function probeHealth (engine: CacheEngine, timeoutMs: number): Promise<CacheHealth> {
  const store = engine.givenStore
  const probe: Promise<unknown> = store instanceof RedisStore ? store.client.ping() : store.has(engine.keyspace.healthKey)
  const up = await withTimeout(probe, timeoutMs, 'health').then(() => true, () => false)
  const bus = engine.bus === undefined ? 'off' : engine.bus.stats.connected ? 'up' : 'down'
  return { store: up ? 'up' : 'down', bus, breaker: engine.failOpen.breakerState }
}
