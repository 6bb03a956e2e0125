// One benchmark server per process, forked by bench/main.ts: `node --import tsx bench/server.ts <case>`.
// It listens on a free loopback port, prints it and reports it over IPC, then answers the orchestrator's messages:
// `cpu` (its own CPU time), `stats` (handler runs, cache counters, peak concurrency) and `close`.
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyCompress from '@fastify/compress'
import { Redis } from 'ioredis'
import { createCache } from 'async-cache-dedupe'
import { BentoCache, bentostore } from 'bentocache'
import { memoryDriver } from 'bentocache/drivers/memory'
import { redisDriver } from 'bentocache/drivers/redis'
import fastifyCache, { type FastifyCacheOptions } from '../plugin/index.js'
import blog from '../demo-blog/app.js'
import { CONTENT_TYPE, LARGE_PAGE, LARGE_PAGE_BUFFER, PAGE, PAGE_BUFFER } from './page.js'
import { SERVER_CASES, type ServerCase, type ServerCommand, type ServerMessage, type ServerStats } from './protocol.js'

interface Env {
  redisUrl: string
  prefix: string
  blogDb: string
  blogSeed: boolean
  stampedeHandlerMs: number
  /** The refresh-ahead case: its page's ttl (s) and how long computing it takes (ms). */
  aheadTtlS: number
  aheadHandlerMs: number
}

function envOf (): Env {
  const need = (name: string): string => {
    const value = process.env[name]
    if (value === undefined || value === '') throw new Error(`bench/server.ts needs ${name}`)
    return value
  }
  return {
    redisUrl: need('BENCH_REDIS_URL'),
    prefix: need('BENCH_PREFIX'),
    blogDb: process.env.BENCH_BLOG_DB ?? '',
    blogSeed: process.env.BENCH_BLOG_SEED === '1',
    stampedeHandlerMs: Number(process.env.BENCH_STAMPEDE_MS ?? 100),
    aheadTtlS: Number(process.env.BENCH_AHEAD_TTL_S ?? 1),
    aheadHandlerMs: Number(process.env.BENCH_AHEAD_MS ?? 100)
  }
}

const handlerRuns: Record<string, number> = {}
function countRun (key: string): void {
  handlerRuns[key] = (handlerRuns[key] ?? 0) + 1
}

const cleanups: Array<() => Promise<unknown> | unknown> = []

/** A plain ioredis client, the same for the bare route and every library, so they differ only in what they do. */
function redisClient (env: Env): Redis {
  // Every case gets the same client: auto-pipelined, as the README recommends for @fastify/redis (and as the
  // plugin opens its own). BENCH_AUTOPIPELINE=0 measures them all without it.
  const client = new Redis(env.redisUrl, { enableAutoPipelining: process.env.BENCH_AUTOPIPELINE !== '0' })
  cleanups.push(() => client.disconnect())
  return client
}

// Extra published posts so the blog's index shows a full page of 10 previews (the seed has 5).
const EXTRA_POST_BODY = 'A post added by the benchmark so that the index shows ten previews, as a real blog would. ' +
  'It has a few sentences of **markdown**, a [link](https://fastify.dev) and a list:\n\n' +
  '- caching whole pages in Redis;\n- purging them after the commit;\n- measuring what a hit costs.\n\n' +
  'The rest of the post is not part of the preview, but it is stored in SQLite all the same.'

async function seedBlog (app: FastifyInstance): Promise<void> {
  const { total } = app.posts.listPublished(1, 10)
  for (let i = total; i < 10; i++) {
    app.posts.create({ title: `Benchmark post ${i + 1}`, body: EXTRA_POST_BODY, published: true },
      new Date(Date.UTC(2024, 0, 1 + i)))
  }
}

/** Thrown when the plugin rejects an option a case needs: the case does not exist in this version of the plugin. */
class Unavailable extends Error {}

/**
 * Registers fastify-cache with options beyond the defaults. Options are typed loosely on purpose: the bench must
 * still run against a plugin that does not know one of them yet, and then report that case as N/A.
 */
async function registerCache (app: FastifyInstance, options: Record<string, unknown>, extra: readonly string[]): Promise<void> {
  try {
    await app.register(fastifyCache, options as FastifyCacheOptions)
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err)
    const rejected = extra.find((option) => message.includes(option))
    if (rejected !== undefined) throw new Unavailable(`fastify-cache rejects the option ${rejected}: ${message}`)
    throw err
  }
}

async function build (name: ServerCase, env: Env): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  switch (name) {
    case 'constant':
      app.get('/page', async (_request, reply) => reply.type(CONTENT_TYPE).send(PAGE_BUFFER))
      break

    case 'ioredis': {
      const redis = redisClient(env)
      const key = env.prefix + 'bare-page'
      await redis.set(key, PAGE_BUFFER)
      app.get('/page', async (_request, reply) => {
        const bytes = await redis.getBuffer(key)
        if (bytes === null) throw new Error('the bare page is gone from Redis')
        return reply.type(CONTENT_TYPE).send(bytes)
      })
      break
    }

    case 'plugin-hit':
    case 'plugin-l1':
    case 'miss-plugin':
    case 'miss-process':
    case 'stampede': {
      const options: Record<string, unknown> = { redis: redisClient(env), prefix: env.prefix + name + ':' }
      // Two tiers as they are meant to run in a fleet: L1 in front of Redis, and the bus that keeps L1s consistent.
      if (name === 'plugin-l1') Object.assign(options, { l1: true, bus: true })
      // The same miss without the fleet-wide lock: what the lock's round trips cost.
      if (name === 'miss-process') options.singleFlight = 'process'
      // Cases 3-5 measure the lookup path on the 4 KB identity bytes of cases 1-2, as before content codings.
      if (name !== 'stampede') options.compressAbove = false
      await registerCache(app, options, ['l1', 'bus', 'singleFlight', 'compressAbove'])
      if (name === 'plugin-hit' || name === 'plugin-l1') {
        app.get('/page', { config: { cache: { ttl: 3600 } } }, async (_request, reply) => {
          countRun('')
          return reply.type(CONTENT_TYPE).send(PAGE)
        })
      } else if (name === 'miss-plugin' || name === 'miss-process') {
        app.get('/miss', { config: { cache: { ttl: 60, queryString: true } } }, async (_request, reply) => {
          countRun('')
          return reply.type(CONTENT_TYPE).send(PAGE)
        })
      } else {
        // A cold page that takes a while to compute, so that the requests really overlap.
        let inFlight = 0
        app.addHook('onRequest', async () => {
          inFlight++
          if (inFlight > maxInFlight) maxInFlight = inFlight
        })
        app.addHook('onResponse', async () => { inFlight-- })
        app.get('/ping', async () => 'pong')
        app.get('/cold', { config: { cache: { ttl: 60, queryString: true } } }, async (request, reply) => {
          countRun(request.url)
          await sleep(env.stampedeHandlerMs)
          return reply.type(CONTENT_TYPE).send(PAGE)
        })
      }
      break
    }

    case 'ahead-on':
    case 'ahead-off': {
      // A hot page that takes a while to compute, under steady load across its expiries: with refresh-ahead a hit
      // close to expiry refreshes it in the background; without, the first request past expiry computes it while the
      // others wait on it (single flight). Either way one handler run per expiry.
      // Identity pages, as in cases 3-5: autocannon accepts no coding, and what is measured is the refresh, not codings.
      await registerCache(app, { redis: redisClient(env), prefix: env.prefix + name + ':', compressAbove: false }, ['compressAbove'])
      const cache: Record<string, unknown> = { ttl: env.aheadTtlS }
      if (name === 'ahead-on') cache.refreshAhead = true
      try {
        let running = 0
        app.get('/page', { config: { cache } }, async (_request, reply) => {
          countRun('')
          // Here maxInFlight counts handler runs at once: one refresh at a time is the point.
          maxInFlight = Math.max(maxInFlight, ++running)
          await sleep(env.aheadHandlerMs)
          running--
          return reply.type(CONTENT_TYPE).send(PAGE)
        })
      } catch (err) {
        throw new Unavailable(`fastify-cache rejects the route option refreshAhead: ${String(err)}`)
      }
      break
    }

    case 'miss-ioredis': {
      // The floor of a miss on Redis: one lookup that finds nothing, then one 4 KB write, by hand. The writes cycle
      // through 1,000 fields of one hash (the plugin's default maxVariants), so memory stays bounded.
      const redis = redisClient(env)
      const key = env.prefix + 'miss-floor'
      let slot = 0
      app.get('/miss', async (request, reply) => {
        const found = await redis.hgetBuffer(key, request.url)
        if (found !== null) return reply.type(CONTENT_TYPE).send(found)
        countRun('')
        redis.hset(key, String(slot++ % 1_000), PAGE_BUFFER).catch(() => {})
        return reply.type(CONTENT_TYPE).send(PAGE)
      })
      break
    }

    case 'miss-bare':
      app.get('/miss', async (_request, reply) => {
        countRun('')
        return reply.type(CONTENT_TYPE).send(PAGE)
      })
      break

    case 'acd': {
      // async-cache-dedupe keeps no prefix of its own: the function's name heads every key.
      const cache = createCache({ ttl: 3600, storage: { type: 'redis', options: { client: redisClient(env) } } })
        .define(env.prefix + 'acd-page', async () => {
          countRun('')
          return PAGE
        })
      const page = cache[env.prefix + 'acd-page'] as (arg: string) => Promise<string>
      app.get('/page', async (_request, reply) => reply.type(CONTENT_TYPE).send(await page('index')))
      break
    }

    case 'bento': {
      const bento = new BentoCache({
        default: 'tiered',
        stores: {
          tiered: bentostore()
            // serialize: false is bentocache's fast setting, safe here because the value (a string) is immutable.
            .useL1Layer(memoryDriver({ maxItems: 1_000, serialize: false }))
            .useL2Layer(redisDriver({ connection: redisClient(env), prefix: env.prefix + 'bento' }))
        }
      })
      cleanups.push(async () => await bento.disconnectAll())
      const factory = (): string => {
        countRun('')
        return PAGE
      }
      app.get('/page', async (_request, reply) => {
        return reply.type(CONTENT_TYPE).send(await bento.getOrSet({ key: 'page', ttl: '1h', factory }))
      })
      break
    }

    case 'blog-size-l1': {
      // The plugin's plain L1 hit of a page exactly as large as the blog's index (rendered once, by a blog of its own
      // on the same database): what the blog adds to a hit is then its own hooks alone.
      const sizing = Fastify()
      await sizing.register(blog, {
        dbPath: env.blogDb, redisUrl: env.redisUrl, redisProbeMs: 5_000, cachePrefix: env.prefix + 'sizing:', sessionKey: randomBytes(32), slowMs: 0
      })
      await sizing.ready()
      await seedBlog(sizing) // tops the posts up to ten: idempotent, whichever blog server starts first
      const index = await sizing.inject('/')
      await sizing.close()
      const page = index.rawPayload
      // Identity bytes from L1, as before content codings: the blog's own (gunzipped) hit is what it is compared with.
      await registerCache(app, {
        redis: redisClient(env), prefix: env.prefix + name + ':', l1: true, bus: true, compressAbove: false
      }, ['l1', 'bus', 'compressAbove'])
      app.get('/', { config: { cache: { ttl: 3600 } } }, async (_request, reply) => {
        countRun('')
        return reply.type(CONTENT_TYPE).send(page)
      })
      break
    }

    case 'blog-cached':
    case 'blog-uncached': {
      if (name === 'blog-uncached') {
        // The same blog with the index route left uncached: fastify-cache never sees its `config.cache`, so the
        // route gets no cache hooks at all. Every other route, and every other plugin, is as in the cached blog.
        app.addHook('onRoute', (route) => {
          if (route.url === '/' && route.config !== undefined) delete (route.config as { cache?: unknown }).cache
        })
      }
      await app.register(blog, {
        dbPath: env.blogDb,
        redisUrl: env.redisUrl,
        redisProbeMs: 5_000,
        cachePrefix: env.prefix + name + ':',
        sessionKey: randomBytes(32),
        slowMs: 0 // BLOG_SLOW_MS=0: the index costs what its SQLite queries and template cost
      })
      await app.ready()
      if (env.blogSeed) await seedBlog(app)
      break
    }

    case 'coding-hit-br':
    case 'coding-compress-br':
    case 'coding-miss':
    case 'coding-miss-identity':
      await buildCoding(app, name, env)
      break

    case 'blog-identity':
      await buildBlogIdentity(app, env)
      break
  }
  return app
}

/**
 * The content-coding cases (8), on the 50 KB page: the plugin's Redis hit (no L1), the same page compressed on every
 * request by @fastify/compress, and the miss with and without stored codings. The plugin's servers also keep
 * `/large` cached, which the bench's bytes-per-page table reads back from Redis.
 */
async function buildCoding (
  app: FastifyInstance, name: 'coding-hit-br' | 'coding-compress-br' | 'coding-miss' | 'coding-miss-identity', env: Env
): Promise<void> {
  if (name === 'coding-compress-br') {
    await app.register(fastifyCompress, { global: true })
    app.get('/large', async (_request, reply) => reply.type(CONTENT_TYPE).send(LARGE_PAGE_BUFFER))
    return
  }
  const options: Record<string, unknown> = { redis: redisClient(env), prefix: env.prefix + name + ':' }
  // Identity bytes only, as stored before content codings: the other side of the miss ratio and of the bytes table.
  if (name === 'coding-miss-identity') options.compressAbove = false
  await registerCache(app, options, ['compressAbove'])
  app.get('/large', { config: { cache: { ttl: 3600 } } }, async (_request, reply) => {
    countRun('')
    return reply.type(CONTENT_TYPE).send(LARGE_PAGE)
  })
  app.get('/miss', { config: { cache: { ttl: 60, queryString: true } } }, async (_request, reply) => {
    countRun('')
    return reply.type(CONTENT_TYPE).send(LARGE_PAGE)
  })
}

/** The cached blog storing identity bytes only: the bytes table's "identity-only" side of the blog's index. */
async function buildBlogIdentity (app: FastifyInstance, env: Env): Promise<void> {
  try {
    await app.register(blog, {
      dbPath: env.blogDb,
      redisUrl: env.redisUrl,
      redisProbeMs: 5_000,
      cachePrefix: env.prefix + 'blog-identity:',
      sessionKey: randomBytes(32),
      slowMs: 0,
      cacheOptions: { compressAbove: false }
    })
    await app.ready()
  } catch (err) {
    // The blog registers the plugin itself: an older plugin that rejects the option has no identity-only side.
    const message = err instanceof Error ? err.message : String(err)
    if (message.includes('compressAbove')) throw new Unavailable(`fastify-cache rejects the option compressAbove: ${message}`)
    throw err
  }
  if (env.blogSeed) await seedBlog(app)
}

let maxInFlight = 0

async function main (): Promise<void> {
  const name = process.argv[2] as ServerCase
  if (!SERVER_CASES.includes(name)) throw new Error(`unknown case ${String(name)}; one of ${SERVER_CASES.join(', ')}`)
  const env = envOf()
  const app = await build(name, env)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  console.log(`bench server ${name} on http://127.0.0.1:${port}`)

  process.on('message', (message: ServerCommand) => {
    const reply = (value: unknown): void => { process.send?.({ type: 'reply', id: message.id, value } satisfies ServerMessage) }
    if (message.cmd === 'cpu') {
      reply(process.cpuUsage())
    } else if (message.cmd === 'stats') {
      const cache = app.hasDecorator('cache') ? app.cache.stats() : undefined
      const stats: ServerStats = {
        handlerRuns: { ...handlerRuns },
        cache: cache === undefined
          ? undefined
          : { hits: cache.hits, misses: cache.misses, writes: cache.writes, errors: cache.errors, coalesced: cache.coalesced },
        maxInFlight
      }
      if (message.reset === true) maxInFlight = 0
      reply(stats)
    } else if (message.cmd === 'close') {
      // The orchestrator waits for the exit. A normal exit, so that --cpu-prof writes its profile.
      app.close()
        .then(async () => { for (const cleanup of cleanups) await cleanup() })
        .finally(() => process.exit(0))
    }
  })
  // An orphan when the orchestrator dies: leave with it.
  process.on('disconnect', () => process.exit(0))
  process.send?.({ type: 'ready', port } satisfies ServerMessage)
}

main().catch((err: unknown) => {
  if (err instanceof Unavailable) {
    process.send?.({ type: 'unavailable', reason: err.message } satisfies ServerMessage)
    process.exit(0)
  }
  const error = err instanceof Error ? err.stack ?? err.message : String(err)
  console.error(error)
  process.send?.({ type: 'failed', error } satisfies ServerMessage)
  process.exit(1)
})
