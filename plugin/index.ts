import type { FastifyInstance, FastifyPluginAsync, FastifyRequest, FastifyReply } from 'fastify'
import fp from 'fastify-plugin'
import { Redis } from 'ioredis'
import { FastifyCache, kUseEngine } from './api.js'
import { CacheEngine } from './engine.js'
import { invalidOption } from './errors.js'
import { cacheTags, cacheTtl, kHandlerDecisions } from './handler-decisions.js'
import { kCacheMiss } from './hooks.js'
import { CacheObservers } from './observers.js'
import { CachedRoutes } from './routes.js'
import {
  normalizeOptions, normalizeRouteOptions, type FastifyCacheOptions, type NormalizedOptions, type RouteCacheOptions
} from './options.js'
import type { RedisClient } from './redis-client.js'
import { MemoryStore } from './stores/memory.js'
import { RedisStore } from './stores/redis.js'
import type { CacheStore } from './stores/store.js'
import { withTimeout } from './timeout.js'

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
  const appRedis = appRedisOf(fastify)
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

function asArray<T> (value: T | T[]): T[] {
  return Array.isArray(value) ? value : [value]
}

/** The app's @fastify/redis client, wherever that plugin was registered, once it is decorated. */
function appRedisOf (fastify: FastifyInstance): RedisClient | undefined {
  return fastify.hasDecorator('redis') ? (fastify as unknown as { redis: RedisClient }).redis : undefined
}

const fastifyCachePlugin: FastifyPluginAsync<FastifyCacheOptions> = async (fastify, input) => {
  const options = normalizeOptions(input)
  let resolved = resolveStore(fastify, options)
  if (options.bus && !(resolved.store instanceof RedisStore)) throw invalidOption('bus', 'needs the Redis store (pub/sub carries the purges)')
  // One list of observers for every engine built here: what subscribed before ready keeps hearing after a store change.
  const observers = new CacheObservers()
  let engine = new CacheEngine(resolved.store, options, fastify.log, observers)
  const api = new FastifyCache(engine, resolved.kind, async (request) => await fastify.inject(request))
  // When the connection comes back, probe at once rather than at the end of the cooldown.
  const probe = (): void => engine.failOpen.probeNow(async () => await (engine.givenStore as RedisStore).client.ping())
  if (resolved.store instanceof RedisStore) resolved.store.client.on('ready', probe)
  if (engine.bus !== undefined) {
    // Registration does not wait on a Redis that is down: L1 stays off until the subscription is up.
    await withTimeout(engine.bus.start(), options.operationTimeoutMs, 'subscribe').catch((err: unknown) => {
      fastify.log.warn({ err }, 'fastify-cache: the invalidation bus is not up yet; L1 stays off until it is')
    })
  }

  fastify.decorate('cache', api)
  fastify.decorateRequest(kCacheMiss, null)
  // What a handler decides about its own response's entry (handler-decisions.ts).
  fastify.decorateReply(kHandlerDecisions, null)
  fastify.decorateReply('cacheTtl', cacheTtl)
  fastify.decorateReply('cacheTags', cacheTags)

  // Options are checked as each route is added, so that a bad one fails startup and names the route. A route added
  // before the plugin loaded is not seen here; it is cached all the same (see CachedRoutes).
  const routes = new CachedRoutes(() => engine, options)
  fastify.addHook('onRoute', (routeOptions) => {
    const config = routeOptions.config?.cache
    if (config === undefined || config === false) return
    routes.wire(routeOptions, normalizeRouteOptions(config, options, `${asArray(routeOptions.method).join(',')} ${routeOptions.url}`))
  })
  fastify.addHook('preHandler', routes.preHandler)
  fastify.addHook('onSend', routes.onSend)

  // @fastify/redis registered after this plugin (an autoload order, say): its client is there once the app is ready,
  // before any request, so the cache moves to it. Only pages and values set before ready are left behind.
  fastify.addHook('onReady', async () => {
    const appRedis = options.store === undefined && options.redis === undefined && resolved.kind === 'memory'
      ? appRedisOf(fastify)
      : undefined
    if (appRedis === undefined) return
    fastify.log.info('fastify-cache: @fastify/redis was registered after fastify-cache; the cache uses it from now on')
    const store = new RedisStore(appRedis)
    resolved = { store, kind: 'redis', owned: undefined }
    engine = new CacheEngine(store, options, fastify.log, observers, engine.refreshToken)
    store.client.on('ready', probe)
    api[kUseEngine](engine, 'redis')
  })

  // Tag indexes live as long as their longest member; this sweep drops members whose entry is already gone.
  const pruneTimer = options.tagPruneIntervalMs > 0
    ? setInterval(() => {
      engine.failOpen.call('pruneTags', async () => await engine.invalidation.pruneTags()).catch(() => {})
    }, options.tagPruneIntervalMs).unref()
    : undefined

  fastify.addHook('onClose', async () => {
    clearInterval(pruneTimer)
    const { store, owned } = resolved
    if (store instanceof RedisStore) store.client.off('ready', probe)
    await engine.bus?.close()
    await (store as CacheStore).close?.()
    if (owned === undefined) return
    // QUIT waits for a reply that a dead or reconnecting server never sends.
    if (owned.status === 'ready') await withTimeout(owned.quit(), 1_000, 'quit').catch(() => {})
    owned.disconnect()
  })
}

export const fastifyCache = fp(fastifyCachePlugin, { fastify: '5.x', name: 'fastify-cache' })
export default fastifyCache

export { FastifyCache } from './api.js'
export { httpPurger } from './http-purger.js'
export type { HttpPurge, HttpPurgerOptions, PurgeLog, PurgeReport } from './http-purger.js'
export { edgeToken, EDGE_TAG_RULES } from './edge.js'
export type { EdgeControlHeader, EdgeOptions, EdgeTagHeader, EdgeTagRules } from './edge.js'
export type { OnPurge, PurgeContext, PurgeEvent } from './purge-reporter.js'
export type { CachedKey, MemoizeOptions, Memoized, WrapOptions } from './api.js'
export type { CacheStats } from './stats.js'
export { DEFAULT_HEALTH_TIMEOUT_MS } from './health.js'
export type { CacheHealth } from './health.js'
export type { CacheObserver, ComputeObservation, LookupObservation, ResponseObservation } from './observers.js'
export { TRACING_CHANNELS } from './tracing.js'
export type { ComputeTraceContext, LookupTraceContext, PageTraceContext, StoreTraceContext } from './tracing.js'
export * from './errors.js'
export { decodePage, encodePage } from './entry.js'
export { pageKey } from './key.js'
export { MAX_KEY_BYTES, toStoreKey } from './keyspace.js'
export {
  DEFAULT_BREAKER_COOLDOWN_MS, DEFAULT_BREAKER_THRESHOLD, DEFAULT_LOOKUP_TIMEOUT_MS, DEFAULT_MAX_BODY_BYTES,
  DEFAULT_PREFIX, DEFAULT_TTL_SECONDS
} from './options.js'
export type { CacheRequest, FastifyCacheOptions, RouteCacheOptions } from './options.js'
// Also what carries reply.cacheTtl/cacheTags's typing (augmented beside the decorators) into the published types.
export type { HandlerDecisions } from './handler-decisions.js'
export { DEFAULT_WARM_CONCURRENCY } from './warm.js'
export type { WarmOptions, WarmResult } from './warm.js'
export { MemoryStore } from './stores/memory.js'
export { RedisStore } from './stores/redis.js'
export type {
  CacheStore, DeleteOptions, FieldLock, FieldRead, GetFieldOptions, PageStore, SetFieldOptions, StoreKeyInfo
} from './stores/store.js'
export type { FastifyRequest, FastifyReply }
