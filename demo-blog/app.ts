import { dirname } from 'node:path'
import type { FastifyInstance } from 'fastify'
import fastifyCompress from '@fastify/compress'
import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import type { FastifyCacheOptions } from '../plugin/index.js'
import errorPages from './errors.js'
import cachePlugin from './plugins/cache.js'
import dbPlugin from './plugins/db.js'
import formsPlugin from './plugins/forms.js'
import metricsPlugin from './plugins/metrics.js'
import sessionPlugin from './plugins/session.js'
import viewPlugin from './plugins/view.js'
import adminRoutes from './routes/admin.js'
import authRoutes from './routes/auth.js'
import blogRoutes from './routes/blog.js'
import healthRoutes from './routes/health.js'

export interface BlogOptions {
  /** SQLite file, created, migrated and seeded on first start. */
  dbPath: string
  /** Where a generated session key is kept. Default: the directory of `dbPath`. */
  dataDir?: string
  /** Probed at startup (see `redisProbeMs`); unset, or no answer, means the memory store. */
  redisUrl?: string
  /** An ioredis client to use instead of `redisUrl`; the blog never closes it. */
  redis?: Redis
  /** Default 1000. */
  redisProbeMs?: number
  /** Default `'blog:'`. */
  cachePrefix?: string
  /** An xkey purge endpoint (Varnish) in front of the blog: pages carry surrogate keys and purges are sent there. */
  edgePurgeUrl?: string
  /** Extra fastify-cache options, e.g. `{ lookupTimeoutMs }`. */
  cacheOptions?: Omit<FastifyCacheOptions, 'prefix' | 'store' | 'redis'>
  /** 32 bytes, as a Buffer, 64 hex digits or base64. Default: generated once and kept in `dataDir`. */
  sessionKey?: Buffer | string
  /** Default `'auto'`: Secure cookies when the request is https (behind a proxy, with Fastify's trustProxy). */
  secureCookie?: boolean | 'auto'
  /** Default 1 day. */
  sessionExpirySeconds?: number
  /** The admin account created on first start. Default admin / admin. */
  adminUser?: string
  adminPassword?: string
  /** Simulated work on the index, in milliseconds. Default 0. */
  slowMs?: number
  /** Default 10. */
  perPage?: number
  /** Default 5 per minute per IP. */
  loginRateLimit?: { max: number, timeWindow: number | string }
  /** Base of absolute URLs (canonical links). Unset: none are written. Never taken from the Host header. */
  publicUrl?: string
  /** Default `'fastify-cache blog'`. */
  siteName?: string
  /** Default 10 s. */
  statsIntervalMs?: number
  /** Default 60 samples (10 minutes at 10 s). */
  statsHistorySize?: number
}

export const DEFAULT_CACHE_PREFIX = 'blog:'

/** The demo blog as a plugin: it listens on nothing, so tests inject into it and server.ts serves it. */
async function blog (fastify: FastifyInstance, options: BlogOptions): Promise<void> {
  const statsIntervalMs = options.statsIntervalMs ?? 10_000

  await fastify.register(dbPlugin, {
    path: options.dbPath,
    adminUser: options.adminUser ?? 'admin',
    adminPassword: options.adminPassword ?? 'admin'
  })
  await fastify.register(sessionPlugin, {
    key: options.sessionKey,
    keyDir: options.dataDir ?? dirname(options.dbPath),
    secureCookie: options.secureCookie ?? 'auto',
    expirySeconds: options.sessionExpirySeconds ?? 24 * 3600
  })
  await fastify.register(formsPlugin)
  // Pages the cache holds are stored compressed and sent as they are; compress handles the rest (admin pages, a
  // miss's first response, a client asking for deflate).
  await fastify.register(fastifyCompress, { global: true })
  await fastify.register(viewPlugin, { siteName: options.siteName ?? 'fastify-cache blog', publicUrl: options.publicUrl })
  await fastify.register(cachePlugin, {
    redisClient: options.redis,
    redisUrl: options.redisUrl,
    redisProbeMs: options.redisProbeMs ?? 1_000,
    prefix: options.cachePrefix ?? DEFAULT_CACHE_PREFIX,
    edgePurgeUrl: options.edgePurgeUrl,
    cacheOptions: options.cacheOptions ?? {},
    statsIntervalMs,
    statsHistorySize: options.statsHistorySize ?? 60
  })
  await fastify.register(metricsPlugin)
  await fastify.register(errorPages)

  await fastify.register(blogRoutes, { slowMs: options.slowMs ?? 0, perPage: options.perPage ?? 10 })
  await fastify.register(authRoutes, { loginRateLimit: options.loginRateLimit ?? { max: 5, timeWindow: 60_000 } })
  await fastify.register(adminRoutes, { statsIntervalMs })
  await fastify.register(healthRoutes)
}

// fp: the decorators (cache, posts, …) stay visible to whoever registers the blog, such as the tests.
export default fp(blog, { fastify: '5.x', name: 'demo-blog' })
