import type { FastifyInstance, FastifyPluginAsync, FastifyRequest, FastifyReply } from 'fastify'
import fp from 'fastify-plugin'
import { Redis } from 'ioredis'
import { FastifyCache } from './api.js'
import { CacheCore } from './core.js'
import { invalidOption, withTimeout } from './errors.js'
import { InvalidationBus, LocalTier } from './tiers.js'

const BUS_CHANNEL = '__bus'
import { kCacheState, routeHooks } from './hooks.js'
import {
  normalizeOptions, normalizeRouteOptions, type FastifyCacheOptions, type NormalizedOptions, type RedisClient,
  type RouteCacheOptions
} from './options.js'
import { MemoryStore } from './stores/memory.js'
import { RedisStore } from './stores/redis.js'
import type { CacheStore } from './stores/store.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Cache this route's responses: `true` for the defaults, or options. */
    cache?: RouteCacheOptions | boolean
  }
  interface FastifyInstance {
    cache: FastifyCache
  }
}

interface ResolvedStore {
  store: CacheStore
  kind: 'redis' | 'memory' | 'custom'
  /** A client the plugin opened from a URL, and so closes. */
  owned: Redis | undefined
}

function resolveStore (fastify: FastifyInstance, options: NormalizedOptions): ResolvedStore {
  const { store } = options
  if (typeof store === 'object') return { store, kind: 'custom', owned: undefined }
  const appRedis = fastify.hasDecorator('redis') ? (fastify as unknown as { redis: RedisClient }).redis : undefined
  if (store === 'memory' || (store === undefined && options.redis === undefined && appRedis === undefined)) {
    if (store === undefined) fastify.log.info('fastify-cache: no Redis client found; using the in-process memory store')
    return { store: new MemoryStore({ maxBytes: options.memoryMaxBytes }), kind: 'memory', owned: undefined }
  }
  if (typeof options.redis === 'string') {
    // Our own connection fails fast, so that a dead Redis costs a lookup budget rather than a queue of retries.
    // Auto-pipelining batches the commands of concurrent requests into one write (measured: less Redis CPU per miss).
    const owned = new Redis(options.redis, {
      maxRetriesPerRequest: 1,
      connectTimeout: 2_000,
      enableAutoPipelining: true,
      // Reconnect within half a second of Redis coming back, so hits resume with the breaker's next probe.
      retryStrategy: (attempt: number) => Math.min(attempt * 50, 500)
    })
    owned.on('error', (err) => fastify.log.debug({ err }, 'fastify-cache: redis connection error'))
    return { store: new RedisStore(owned), kind: 'redis', owned }
  }
  const client = options.redis ?? appRedis
  if (client === undefined) {
    throw invalidOption('store', "'redis' needs the redis option or @fastify/redis registered before fastify-cache")
  }
  return { store: new RedisStore(client), kind: 'redis', owned: undefined }
}

function asArray<T> (hooks: T | T[] | undefined): T[] {
  if (hooks === undefined) return []
  return Array.isArray(hooks) ? hooks : [hooks]
}

const fastifyCachePlugin: FastifyPluginAsync<FastifyCacheOptions> = async (fastify, input) => {
  const options = normalizeOptions(input)
  const { store, kind, owned } = resolveStore(fastify, options)
  const core = new CacheCore(store, options, fastify.log)
  const cache = new FastifyCache(core, kind)
  // When the connection comes back, probe at once rather than at the end of the cooldown.
  // The probe is a PING of its own, sent at once: one round trip, not a lookup that may take two (a miss locks), which
  // on a process still busy from the outage could miss the budget and re-open the breaker for another cooldown.
  const probe = (): void => {
    core.breaker.probeNow()
    if (core.breaker.state === 'half-open') {
      core.failOpen('probe', async () => await (store as RedisStore).client.ping(), undefined).catch(() => {})
    }
  }
  if (store instanceof RedisStore) store.client.on('ready', probe)
  if (options.l1 !== undefined) core.l1 = new LocalTier(options.l1)
  if (options.bus) {
    if (!(store instanceof RedisStore)) throw invalidOption('bus', 'needs the Redis store (pub/sub carries the purges)')
    const bus = new InvalidationBus(store.client, options.prefix + BUS_CHANNEL, fastify.log,
      (message) => core.received(message),
      (connected) => {
        // Purges published while we were not listening are lost: empty L1 and keep it off until we listen again.
        if (core.l1 !== undefined) {
          core.l1.enabled = connected
          core.l1.clear()
        }
      })
    core.bus = bus
    if (core.l1 !== undefined) core.l1.enabled = false
    // Registration does not wait on a Redis that is down: L1 stays off until the subscription is up.
    await withTimeout(bus.start(), options.operationTimeoutMs, 'subscribe').catch((err: unknown) => {
      fastify.log.warn({ err }, 'fastify-cache: the invalidation bus is not up yet; L1 stays off until it is')
    })
  }

  fastify.decorate('cache', cache)
  fastify.decorateRequest(kCacheState, null)

  fastify.addHook('onRoute', (routeOptions) => {
    const config = routeOptions.config?.cache
    if (config === undefined || config === false) return
    const methods = asArray(routeOptions.method).join(',')
    const route = normalizeRouteOptions(config, options, `${methods} ${routeOptions.url}`)
    const hooks = routeHooks(core, route)
    // New arrays: the caller's arrays are shared with the HEAD route Fastify derives from this one.
    routeOptions.onRequest = [...asArray(routeOptions.onRequest), hooks.onRequest] as typeof routeOptions.onRequest
    routeOptions.onSend = [...asArray(routeOptions.onSend), hooks.onSend] as typeof routeOptions.onSend
  })

  // Tag indexes live as long as their longest member; this sweep drops members whose entry is already gone.
  const pruneTimer = options.tagPruneIntervalMs > 0
    ? setInterval(() => {
      core.failOpen('pruneTags', async () => await core.pruneTags(), undefined).catch(() => {})
    }, options.tagPruneIntervalMs).unref()
    : undefined

  fastify.addHook('onClose', async () => {
    clearInterval(pruneTimer)
    if (store instanceof RedisStore) store.client.off('ready', probe)
    await core.bus?.close()
    await store.close?.()
    if (owned === undefined) return
    // QUIT waits for a reply that a dead or reconnecting server never sends.
    if (owned.status === 'ready') await withTimeout(owned.quit(), 1_000, 'quit').catch(() => {})
    owned.disconnect()
  })
}

export const fastifyCache = fp(fastifyCachePlugin, { fastify: '5.x', name: 'fastify-cache' })
export default fastifyCache

export { FastifyCache } from './api.js'
export type { CachedKey, MemoizeOptions, Memoized, WrapOptions } from './api.js'
export type { CacheStats } from './core.js'
export * from './errors.js'
export { decodePage, encodePage } from './entry.js'
export { pageKey, toStoreKey } from './key.js'
export {
  DEFAULT_BREAKER_COOLDOWN_MS, DEFAULT_BREAKER_THRESHOLD, DEFAULT_LOOKUP_TIMEOUT_MS, DEFAULT_MAX_BODY_BYTES,
  DEFAULT_PREFIX, DEFAULT_TTL_SECONDS, MAX_KEY_BYTES
} from './options.js'
export type { CacheRequest, FastifyCacheOptions, RouteCacheOptions } from './options.js'
export { MemoryStore } from './stores/memory.js'
export { RedisStore } from './stores/redis.js'
export type { CacheStore, FieldLock, FieldRead, StoreKeyInfo } from './stores/store.js'
export type { FastifyRequest, FastifyReply }
