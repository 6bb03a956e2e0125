import fastifyRedis from '@fastify/redis'
import type { FastifyBaseLogger } from 'fastify'
import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import fastifyCache, { httpPurger, type FastifyCacheOptions } from '../../plugin/index.js'
import { connectRedis, redactUrl } from '../lib/redis-probe.js'
import { StatsHistory } from '../lib/stats-history.js'

export interface CachePluginOptions {
  /** An ioredis client to use as is; the blog never closes it. Wins over `redisUrl`. */
  redisClient?: Redis
  /** Probed at startup; when it does not answer within `redisProbeMs`, the memory store is used. */
  redisUrl?: string
  redisProbeMs: number
  /** Every key the blog's cache writes starts with it. */
  prefix: string
  /**
   * A Varnish (or other xkey purge endpoint) in front of the blog (EDGE_PURGE_URL): pages then carry surrogate keys,
   * and every purge is sent there too.
   */
  edgePurgeUrl?: string
  /** Further fastify-cache options, e.g. `lookupTimeoutMs`. */
  cacheOptions: Omit<FastifyCacheOptions, 'prefix' | 'store' | 'redis'>
  /** How often the dashboard's chart samples the counters. */
  statsIntervalMs: number
  /** Samples kept: `statsHistorySize * statsIntervalMs` is the chart's time span. */
  statsHistorySize: number
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Per-interval hit ratios for the dashboard. */
    cacheHistory: StatsHistory
    /** Takes a sample now (the timer calls it every `statsIntervalMs`). */
    sampleCacheStats (): void
    /**
     * Deletes cached pages, e.g. `['view//']`, and every entry carrying one of `tags` (e.g. `post:3`). Call it after
     * the database commit. A failed purge is logged and retried on every stats tick until the store takes it, and
     * resolves false.
     */
    purgePages (keys: readonly string[], log?: FastifyBaseLogger, tags?: readonly string[]): Promise<boolean>
    /** Keys (and `tag <name>`) whose purge failed and waits for a retry. */
    pendingPurges: ReadonlySet<string>
  }
}

export default fp<CachePluginOptions>(async function cachePlugin (fastify, options) {
  let store: 'redis' | 'memory' = 'memory'
  if (options.redisClient !== undefined) {
    await fastify.register(fastifyRedis, { client: options.redisClient, closeClient: false })
    store = 'redis'
  } else if (options.redisUrl !== undefined) {
    const client = await connectRedis(options.redisUrl, options.redisProbeMs, fastify.log)
    if (client === undefined) {
      fastify.log.warn(`Redis at ${redactUrl(options.redisUrl)} did not answer within ${options.redisProbeMs} ms: ` +
        'caching in process memory instead (not shared between instances, lost on restart)')
    } else {
      await fastify.register(fastifyRedis, { client, closeClient: true })
      store = 'redis'
    }
  }
  // Two tiers and a bus, as DESIGN.md asks of the blog: hot pages from memory, instances consistent through Redis.
  const edge: FastifyCacheOptions = options.edgePurgeUrl === undefined
    ? {}
    : { edge: { tagHeader: 'surrogate-key', controlHeader: 'surrogate-control' }, onPurge: httpPurger({ url: options.edgePurgeUrl }) }
  await fastify.register(fastifyCache, {
    l1: true, bus: store === 'redis', ...edge, ...options.cacheOptions, prefix: options.prefix, store
  })
  fastify.log.info({ store: fastify.cache.storeKind, prefix: options.prefix, edgePurgeUrl: options.edgePurgeUrl },
    `cache store: ${fastify.cache.storeKind}`)

  const history = new StatsHistory(options.statsHistorySize)
  history.start(fastify.cache.stats())
  const pending = new Set<string>()
  const pendingTags = new Set<string>()

  async function purgePages (
    keys: readonly string[], log: FastifyBaseLogger = fastify.log, tags: readonly string[] = []
  ): Promise<boolean> {
    try {
      if (keys.length > 0) await fastify.cache.deleteMany(keys)
      if (tags.length > 0) await fastify.cache.invalidateTags(tags)
      for (const key of keys) pending.delete(key)
      for (const tag of tags) pendingTags.delete(tag)
      return true
    } catch (err) {
      // The row is committed but the old page may still be in the store: keep trying, so it is gone once the
      // store answers again (until then lookups fail open and serve fresh pages).
      for (const key of keys) pending.add(key)
      for (const tag of tags) pendingTags.add(tag)
      log.error({ err, keys, tags }, 'cache purge failed; it will be retried')
      return false
    }
  }

  function sample (): void {
    history.record(fastify.cache.stats(), Date.now())
    if (pending.size > 0 || pendingTags.size > 0) {
      purgePages([...pending], fastify.log, [...pendingTags]).catch(() => {}) // purgePages logs its own failures
    }
  }

  fastify.decorate('cacheHistory', history)
  fastify.decorate('sampleCacheStats', sample)
  fastify.decorate('purgePages', purgePages)
  // Keys, and tags shown as `tag <name>`.
  fastify.decorate('pendingPurges', { getter: () => new Set([...pending, ...[...pendingTags].map((tag) => `tag ${tag}`)]) })

  const timer = setInterval(sample, options.statsIntervalMs)
  timer.unref()
  fastify.addHook('onClose', () => { clearInterval(timer) })
}, { fastify: '5.x', name: 'blog-cache' })
