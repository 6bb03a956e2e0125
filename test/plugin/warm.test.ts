import t from 'tap'
import Fastify from 'fastify'
import fastifyRedis from '@fastify/redis'
import fastifyCache, { MemoryStore, type CacheStore } from '../../plugin/index.js'
import { PAGE_STORE_METHODS, VALUE_STORE_METHODS } from '../../plugin/stores/store.js'
import { warmPages, WARM_HEADER } from '../../plugin/warm.js'
import { build } from '../helpers/app.js'
import { redisForFile } from '../helpers/redis.js'

// fastify.cache.warm: pages rendered through inject before traffic, and an honest count of what the cache stored.

const { redis, client } = await redisForFile(t)

/** Yields to the event loop until `done()` holds (no timers: each turn is one setImmediate). */
async function until (done: () => boolean, turns = 1_000): Promise<void> {
  for (let turn = 0; turn < turns && !done(); turn++) await new Promise((resolve) => setImmediate(resolve))
}

t.test('before listen: every page is rendered once and stored, and the next visitor gets a hit', async (t) => {
  const app = await build(t, { redis })
  const calls: Record<string, number> = {}
  for (const path of ['/', '/about', '/post/:id']) {
    app.get(path, { config: { cache: { ttl: 600 } } }, async (request) => {
      calls[request.url] = (calls[request.url] ?? 0) + 1
      return `page ${request.url}`
    })
  }
  await app.ready()
  const result = await app.cache.warm(['/', '/about', '/post/1', '/post/2'])
  t.same(result, { stored: 4, failed: [] })
  t.same(calls, { '/': 1, '/about': 1, '/post/1': 1, '/post/2': 1 })
  for (const path of ['/', '/about', '/post/1', '/post/2']) {
    const visit = await app.inject(path)
    t.equal(visit.headers['x-cache'], 'HIT', path)
    t.equal(visit.body, `page ${path}`)
    t.equal(visit.headers[WARM_HEADER], undefined, 'a visitor never sees the warming header')
  }
  t.same(calls, { '/': 1, '/about': 1, '/post/1': 1, '/post/2': 1 }, 'no handler ran for the visitors')
  t.ok(await client.exists(app.cache.prefix + 'view//post/2'), 'in Redis')
})

t.test('a page already stored is rendered again (the point of warming after a deploy)', async (t) => {
  const app = await build(t, { redis })
  let version = 1
  app.get('/p', { config: { cache: { ttl: 600 } } }, async () => `version ${version}`)
  t.equal((await app.inject('/p')).body, 'version 1')
  version = 2
  t.equal((await app.inject('/p')).body, 'version 1', 'a hit')
  t.same(await app.cache.warm(['/p']), { stored: 1, failed: [] })
  const after = await app.inject('/p')
  t.equal(after.headers['x-cache'], 'HIT')
  t.equal(after.body, 'version 2')
})

t.test('what was stored is known without x-cache or cache-status', async (t) => {
  const app = await build(t, { redis, cache: { xCache: false, cacheStatus: false } })
  app.get('/quiet', { config: { cache: { ttl: 600 } } }, async () => 'quiet')
  app.get('/skip', { config: { cache: { ttl: 600 } } }, async (_request, reply) => reply.cacheTtl(0).send('skip'))
  const result = await app.cache.warm(['/quiet', '/skip'])
  t.equal(result.stored, 1)
  t.same(result.failed, [{ path: '/skip', error: 'not stored: bypassed, or not a cached route' }])
  t.equal(await app.cache.has('view//quiet'), true)
})

t.test('a path that fails, is not cached or is not stored is in failed, with why, in the order given', async (t) => {
  const app = await build(t, { redis })
  app.get('/ok', { config: { cache: { ttl: 600 } } }, async () => 'ok')
  app.get('/boom', { config: { cache: { ttl: 600 } } }, async () => { throw new Error('handler failed') })
  app.get('/plain', async () => 'not a cached route')
  app.get('/private', { config: { cache: { ttl: 600, unless: () => true } } }, async () => 'for one visitor')
  app.get('/cookie', { config: { cache: { ttl: 600 } } }, async (_request, reply) => reply.header('set-cookie', 'a=1').send('x'))
  app.get('/purged', { config: { cache: { ttl: 600 } } }, async (request) => {
    // A purge while the page renders: its render may predate the purge, so the cache refuses it.
    await request.server.cache.delete('view//elsewhere')
    return 'purged meanwhile'
  })
  const result = await app.cache.warm(['/missing', '/ok', '/boom', '/plain', '/private', '/cookie', '/purged'], { concurrency: 3 })
  t.equal(result.stored, 1)
  t.same(result.failed, [
    { path: '/missing', error: 'status 404' },
    { path: '/boom', error: 'status 500' },
    { path: '/plain', error: 'not stored: bypassed, or not a cached route' },
    { path: '/private', error: 'not stored: bypassed, or not a cached route' },
    { path: '/cookie', error: 'not stored: bypassed, or not a cached route' },
    { path: '/purged', error: 'not stored: the store refused it or did not answer' }
  ])
  t.equal(await app.cache.has('view//purged'), false)
})

t.test('a store that never answers the write: the warming does not hang on it, and says so', async (t) => {
  const inner = new MemoryStore({ maxBytes: 1024 * 1024 })
  const store: Record<string, unknown> = {}
  for (const name of [...VALUE_STORE_METHODS, ...PAGE_STORE_METHODS]) store[name] = (inner[name] as (...args: unknown[]) => unknown).bind(inner)
  store.setField = async () => await new Promise(() => {})
  const app = await build(t, { cache: { store: store as unknown as CacheStore, operationTimeoutMs: 50 } })
  app.get('/hung', { config: { cache: { ttl: 600 } } }, async () => 'hung')
  t.same(await app.cache.warm(['/hung']), {
    stored: 0, failed: [{ path: '/hung', error: 'not stored: the store refused it or did not answer' }]
  })
})

t.test('a query variant is warmed as the variant', async (t) => {
  const app = await build(t, { redis })
  app.get('/list', { config: { cache: { ttl: 600, queryString: ['page'] } } }, async (request) => `page ${String((request.query as { page?: string }).page ?? 1)}`)
  t.same(await app.cache.warm(['/list?page=2', '/list?other=1']), {
    stored: 1, failed: [{ path: '/list?other=1', error: 'not stored: bypassed, or not a cached route' }]
  })
  const hit = await app.inject('/list?page=2')
  t.equal(hit.headers['x-cache'], 'HIT')
  t.equal(hit.body, 'page 2')
})

t.test('no more than `concurrency` pages render at once', async (t) => {
  const app = await build(t, { redis })
  const waiting: Array<() => void> = []
  let entered = 0
  app.get('/w/:n', { config: { cache: { ttl: 600 } } }, async (request) => {
    entered++
    await new Promise<void>((resolve) => waiting.push(resolve))
    return request.url
  })
  await app.ready()
  const warming = app.cache.warm(['/w/1', '/w/2', '/w/3', '/w/4', '/w/5'], { concurrency: 2 })
  let peak = 0
  for (let released = 0; released < 5; released++) {
    await until(() => waiting.length === Math.min(2, 5 - released))
    peak = Math.max(peak, waiting.length)
    t.ok(waiting.length <= 2, `at most 2 render at once (${waiting.length})`)
    waiting.shift()?.()
  }
  t.equal(entered, 5)
  t.equal(peak, 2, 'and two did')
  t.same(await warming, { stored: 5, failed: [] })
})

t.test('called before ready, and with @fastify/redis registered after the cache (which moves to it at ready)', async (t) => {
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(fastifyCache, { prefix: `${redis.prefix}late:` })
  await app.register(fastifyRedis, { url: redis.url })
  app.get('/early', { config: { cache: { ttl: 600 } } }, async () => 'early')
  t.same(await app.cache.warm(['/early']), { stored: 1, failed: [] }, 'inject readies the app; the warming is recognised')
  t.equal(app.cache.storeKind, 'redis')
  t.equal(await client.exists(`${redis.prefix}late:view//early`), 1, 'stored in Redis')
})

t.test('a client cannot ask for the warming answer, nor force a render, without the token', async (t) => {
  const app = await build(t, { redis })
  let calls = 0
  app.get('/p', { config: { cache: { ttl: 600 } } }, async () => `call ${++calls}`)
  const forged = { [WARM_HEADER]: 'guess', 'x-fastify-cache-revalidate': 'guess' }
  const first = await app.inject({ url: '/p', headers: forged })
  t.equal(first.headers['x-cache'], 'MISS')
  t.equal(first.headers[WARM_HEADER], undefined)
  const second = await app.inject({ url: '/p', headers: forged })
  t.equal(second.headers['x-cache'], 'HIT', 'not forced')
  t.equal(calls, 1)
})

t.test('bad arguments reject with a coded error; an empty list warms nothing', async (t) => {
  const app = await build(t, { redis })
  t.same(await app.cache.warm([]), { stored: 0, failed: [] })
  app.get('/x', { config: { cache: { ttl: 600 } } }, async () => 'x')
  t.same(await app.cache.warm(['/x'], {}), { stored: 1, failed: [] }, 'options without concurrency: the default')
  const bad: Array<[unknown, unknown, string, RegExp]> = [
    ['/', undefined, 'warm paths', /expected an array/],
    [['about'], undefined, 'warm paths', /starting with '\/', got "about"/],
    [['//evil.example/x'], undefined, 'warm paths', /got "\/\/evil/],
    [[42], undefined, 'warm paths', /got number/],
    [['/'], null, 'warm options', /expected \{ concurrency \}/],
    [['/'], 'fast', 'warm options', /expected \{ concurrency \}/],
    [['/'], { concurrency: 0 }, 'warm concurrency', /positive integer, got 0/],
    [['/'], { concurrency: 1.5 }, 'warm concurrency', /got 1.5/],
    [['/'], { concurrency: '4' }, 'warm concurrency', /got 4/]
  ]
  for (const [paths, options, option, message] of bad) {
    await t.rejects(app.cache.warm(paths as string[], options as { concurrency: number }), { code: 'FST_CACHE_INVALID_OPTION', option, message },
      `${JSON.stringify(paths)} ${JSON.stringify(options)}`)
  }
})

t.test('an inject that throws is a failed path with its message; other pages carry on', async (t) => {
  const inject = async ({ url }: { url: string }): Promise<{ statusCode: number, headers: Record<string, unknown> }> => {
    if (url === '/throws') throw new Error('socket hang up')
    if (url === '/rejects') throw 'not an error' // eslint-disable-line no-throw-literal
    return { statusCode: 200, headers: { [WARM_HEADER]: 'stored' } }
  }
  t.same(await warmPages(inject, 'token', ['/throws', '/fine', '/rejects']), {
    stored: 1,
    failed: [{ path: '/throws', error: 'socket hang up' }, { path: '/rejects', error: 'not an error' }]
  })
})
