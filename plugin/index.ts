import type { FastifyInstance, FastifyPluginAsync, FastifyRequest, FastifyReply } from 'fastify'
import fp from 'fastify-plugin'
import { Redis } from 'ioredis'
import { FastifyCache } from './api.js'
import { CacheEngine } from './engine.js'
import { invalidOption } from './errors.js'
import { kCacheMiss, RouteCache } from './hooks.js'
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
  if (options.bus && !(store instanceof RedisStore)) throw invalidOption('bus', 'needs the Redis store (pub/sub carries the purges)')
  const engine = new CacheEngine(store, options, fastify.log)
  // When the connection comes back, probe at once rather than at the end of the cooldown.
  const probe = (): void => engine.failOpen.probeNow(async () => await (store as RedisStore).client.ping())
  if (store instanceof RedisStore) store.client.on('ready', probe)
  if (engine.bus !== undefined) {
    // Registration does not wait on a Redis that is down: L1 stays off until the subscription is up.
    await withTimeout(engine.bus.start(), options.operationTimeoutMs, 'subscribe').catch((err: unknown) => {
      fastify.log.warn({ err }, 'fastify-cache: the invalidation bus is not up yet; L1 stays off until it is')
    })
  }

  fastify.decorate('cache', new FastifyCache(engine, kind))
  fastify.decorateRequest(kCacheMiss, null)

  fastify.addHook('onRoute', (routeOptions) => {
    const config = routeOptions.config?.cache
    if (config === undefined || config === false) return
    const methods = asArray(routeOptions.method).join(',')
    const route = new RouteCache(engine, normalizeRouteOptions(config, options, `${methods} ${routeOptions.url}`))
    // New arrays: the caller's arrays are shared with the HEAD route Fastify derives from this one.
    routeOptions.onRequest = [...asArray(routeOptions.onRequest), route.onRequest] as typeof routeOptions.onRequest
    routeOptions.onSend = [...asArray(routeOptions.onSend), route.onSend] as typeof routeOptions.onSend
  })

  // Tag indexes live as long as their longest member; this sweep drops members whose entry is already gone.
  const pruneTimer = options.tagPruneIntervalMs > 0
    ? setInterval(() => {
      engine.failOpen.call('pruneTags', async () => await engine.invalidation.pruneTags()).catch(() => {})
    }, options.tagPruneIntervalMs).unref()
    : undefined

  fastify.addHook('onClose', async () => {
    clearInterval(pruneTimer)
    if (store instanceof RedisStore) store.client.off('ready', probe)
    await engine.bus?.close()
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
export type { CacheStats } from './stats.js'
export * from './errors.js'
export { decodePage, encodePage } from './entry.js'
export { pageKey } from './key.js'
export { MAX_KEY_BYTES, toStoreKey } from './keyspace.js'
export {
  DEFAULT_BREAKER_COOLDOWN_MS, DEFAULT_BREAKER_THRESHOLD, DEFAULT_LOOKUP_TIMEOUT_MS, DEFAULT_MAX_BODY_BYTES,
  DEFAULT_PREFIX, DEFAULT_TTL_SECONDS
} from './options.js'
export type { CacheRequest, FastifyCacheOptions, RouteCacheOptions } from './options.js'
export { MemoryStore } from './stores/memory.js'
export { RedisStore } from './stores/redis.js'
export type {
  CacheStore, DeleteOptions, FieldLock, FieldRead, GetFieldOptions, PageStore, SetFieldOptions, StoreKeyInfo
} from './stores/store.js'
export type { FastifyRequest, FastifyReply }
