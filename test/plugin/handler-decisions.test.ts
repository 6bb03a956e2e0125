import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { decodePage, MemoryStore, type CacheStore } from '../../plugin/index.js'
import { originFreshMs, parseCacheControl } from '../../plugin/cache-control.js'
import { normalizeRouteOptions } from '../../plugin/options.js'
import { PAGE_STORE_METHODS, VALUE_STORE_METHODS } from '../../plugin/stores/store.js'
import { build } from '../helpers/app.js'
import { redisForFile } from '../helpers/redis.js'

// reply.cacheTtl, reply.cacheTags and `ttl: 'origin'`: what a handler, or its response's cache-control, decides
// about the entry. Stored TTLs are read from the entries themselves, never waited for.

const { redis } = await redisForFile(t)

/** The stored entry of a page, read on the app's own connection (which the write went out on, so it is there). */
async function stored (app: FastifyInstance, key: string): Promise<ReturnType<typeof decodePage> | undefined> {
  const client = (app as unknown as { redis: { hgetBuffer: (key: string, field: string) => Promise<Buffer | null> } }).redis
  const bytes = await client.hgetBuffer(app.cache.prefix + key, '')
  return bytes === null ? undefined : decodePage(bytes)
}

/** Calls `fn` and returns what it threw, for checking a coded error. */
function thrown (fn: () => unknown): { code?: string, option?: string, message?: string } | undefined {
  try {
    fn()
  } catch (err) {
    return err as { code: string, option: string, message: string }
  }
  return undefined
}

t.test('reply.cacheTtl sets the entry\'s TTL over the route\'s; the next request is a hit', async (t) => {
  const app = await build(t, { redis })
  let calls = 0
  app.get('/short', { config: { cache: { ttl: 600 } } }, async (_request, reply) => {
    calls++
    reply.cacheTtl(5)
    return 'computed'
  })
  const miss = await app.inject('/short')
  t.equal(miss.headers['x-cache'], 'MISS')
  const entry = await stored(app, 'view//short')
  t.equal(entry?.ttlMs, 5_000, 'the handler\'s 5 s, not the route\'s 600 s')
  const pttl = await (app as unknown as { redis: { pttl: (key: string) => Promise<number> } }).redis.pttl(app.cache.prefix + 'view//short')
  t.ok(pttl > 0 && pttl <= 5_000, `the key expires with it (${pttl} ms)`)
  t.equal((await app.inject('/short')).headers['x-cache'], 'HIT')
  t.equal(calls, 1)
})

t.test('reply.cacheTtl(0): this response is not stored, and the next request computes again', async (t) => {
  const app = await build(t, { redis })
  let calls = 0
  app.get('/maybe', { config: { cache: { ttl: 600 } } }, async (request, reply) => {
    calls++
    if ((request.query as { draft?: string }).draft !== undefined || calls === 1) reply.cacheTtl(0)
    return `call ${calls}`
  })
  const first = await app.inject('/maybe')
  t.equal(first.body, 'call 1')
  t.equal(first.headers['x-cache'], 'BYPASS', 'answered, not stored')
  t.match(first.headers['cache-status'], /fwd=uri-miss/)
  t.notMatch(first.headers['cache-status'], /stored/)
  t.equal(await app.cache.has('view//maybe'), false)
  const second = await app.inject('/maybe')
  t.equal(second.headers['x-cache'], 'MISS', 'the next one decides otherwise, and is stored')
  t.equal((await app.inject('/maybe')).body, 'call 2')
})

t.test('reply.cacheTags adds to the route\'s tags, each once, and invalidateTags of either purges the page', async (t) => {
  const app = await build(t, { redis })
  app.get('/list', { config: { cache: { ttl: 600, tags: ['list'] } } }, async (_request, reply) => {
    reply.cacheTags('post:1', 'list', 'post:2').cacheTags('post:1')
    return 'posts 1 and 2'
  })
  app.get('/fn/:id', { config: { cache: { ttl: 600, tags: (request) => [`item:${request.params.id}`] } } },
    async (request, reply) => reply.cacheTags(`owner:${(request.params as { id: string }).id}`).send('item'))
  app.get('/bare', { config: { cache: { ttl: 600 } } }, async (_request, reply) => reply.cacheTags('post:2').send('bare'))
  app.get('/none', { config: { cache: { ttl: 600, tags: ['static'] } } }, async () => 'untouched')

  for (const url of ['/list', '/fn/7', '/bare', '/none']) t.equal((await app.inject(url)).headers['x-cache'], 'MISS', url)
  t.same((await stored(app, 'view//list'))?.tags, ['list', 'post:1', 'post:2'], 'the route\'s, then the handler\'s, deduplicated')
  t.same((await stored(app, 'view//fn/7'))?.tags, ['item:7', 'owner:7'], 'beside a tags function')
  t.same((await stored(app, 'view//bare'))?.tags, ['post:2'], 'on a route without tags of its own')
  t.same((await stored(app, 'view//none'))?.tags, ['static'], 'a handler that tags nothing leaves the route\'s')

  t.equal(await app.cache.invalidateTags(['post:2']), 2, 'the handler\'s tag reaches both pages that carry it')
  t.equal(await app.cache.has('view//list'), false)
  t.equal(await app.cache.has('view//bare'), false)
  t.equal(await app.cache.has('view//fn/7'), true)
  await app.cache.invalidateTags(['owner:7'])
  t.equal(await app.cache.has('view//fn/7'), false)
})

t.test('a page tagged by its handler notes the store\'s clock before the handler runs', async (t) => {
  // A tag invalidated while the handler ran must keep its page out; the clock read at the lookup is what tells.
  const inner = new MemoryStore({ maxBytes: 1024 * 1024 })
  let clockReads = 0
  const store: Record<string, unknown> = { now: async () => { clockReads++; return Date.now() } }
  for (const name of [...VALUE_STORE_METHODS, ...PAGE_STORE_METHODS]) store[name] = (inner[name] as (...args: unknown[]) => unknown).bind(inner)
  const app = await build(t, { cache: { store: store as unknown as CacheStore } })
  let release!: () => void
  let entered!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  const inside = new Promise<void>((resolve) => { entered = resolve })
  let calls = 0
  app.get('/race', { config: { cache: { ttl: 600 } } }, async (_request, reply) => {
    if (++calls === 1) {
      entered()
      await gate
    }
    return reply.cacheTags('t').send(`render ${calls}`)
  })
  const first = app.inject('/race')
  await inside
  t.equal(clockReads, 1, 'read at the lookup, although the route has no tags')
  await app.cache.invalidateTags(['t'])
  release()
  t.equal((await first).body, 'render 1', 'the visitor still gets the page')
  t.equal(await app.cache.has('view//race'), false, 'but it is not kept: its tag was invalidated after it began')
  t.equal((await app.inject('/race')).body, 'render 2')
  t.equal(await app.cache.has('view//race'), true, 'the next render, begun after, is kept')
})

t.test('bad arguments throw a coded error naming the method, cached route or not', async (t) => {
  const app = await build(t, { redis })
  const errors: Array<ReturnType<typeof thrown>> = []
  const tryAll = (reply: { cacheTtl: (s: number) => unknown, cacheTags: (...tags: string[]) => unknown }): void => {
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY, '5', undefined]) errors.push(thrown(() => reply.cacheTtl(bad as number)))
    for (const bad of [[''], [5], ['ok', null]]) errors.push(thrown(() => reply.cacheTags(...(bad as string[]))))
  }
  app.get('/cached', { config: { cache: { ttl: 60 } } }, async (_request, reply) => { tryAll(reply); return 'ok' })
  app.get('/plain', async (_request, reply) => { tryAll(reply); return 'ok' })
  t.equal((await app.inject('/cached')).headers['x-cache'], 'MISS', 'the handler caught them and the page was stored')
  t.equal((await app.inject('/plain')).statusCode, 200)
  t.equal(errors.length, 16)
  for (const [index, err] of errors.entries()) {
    const method = index % 8 < 5 ? 'reply.cacheTtl(seconds)' : 'reply.cacheTags(...tags)'
    t.equal(err?.code, 'FST_CACHE_INVALID_OPTION', `${method} #${index}`)
    t.equal(err?.option, method)
    t.match(err?.message, method)
  }
  t.same(errors.slice(0, 8).map((err) => err?.message), errors.slice(8).map((err) => err?.message), 'the same on both routes')
})

t.test('on a route that is not cached, or a request that bypasses, the calls do nothing and never throw', async (t) => {
  const app = await build(t, { redis })
  const handler = async (_request: unknown, reply: { cacheTtl: (s: number) => { cacheTags: (...tags: string[]) => unknown } }): Promise<string> => {
    reply.cacheTtl(30).cacheTags('x')
    return 'ok'
  }
  app.get('/plain', handler)
  app.get('/unless', { config: { cache: { ttl: 60, unless: () => true } } }, handler)
  app.post('/post', { config: { cache: { ttl: 60 } } }, handler)
  const plain = await app.inject('/plain')
  t.equal(plain.statusCode, 200)
  t.equal(plain.headers['x-cache'], undefined)
  const unless = await app.inject('/unless')
  t.equal(unless.statusCode, 200)
  t.equal(unless.headers['x-cache'], 'BYPASS')
  const post = await app.inject({ method: 'POST', url: '/post' })
  t.equal(post.statusCode, 200)
  t.equal(post.headers['x-cache'], 'BYPASS')
  t.same(await app.cache.keys(), [], 'nothing stored')
  t.equal(await app.cache.invalidateTags(['x']), 0, 'and nothing tagged')
})

t.test('ttl: \'origin\' takes s-maxage, then max-age, of the response; without either, defaultTtl', async (t) => {
  const app = await build(t, { redis, cache: { defaultTtl: 77 } })
  const cases: Array<[string, string | string[] | undefined, number | undefined, string?]> = [
    ['/s-maxage', 'public, max-age=10, s-maxage=30', 30_000],
    ['/max-age', 'public, max-age=10', 10_000],
    ['/quoted', 'Public, MAX-AGE="15"', 15_000],
    ['/lines', ['public', 'max-age=20'], 20_000],
    ['/same-twice', 'max-age=20, max-age=20', 20_000],
    ['/aged', 'max-age=100', 60_000, '40'],
    ['/silent', 'public', 77_000],
    ['/no-header', undefined, 77_000],
    ['/zero', 'max-age=0', undefined],
    ['/too-old', 'max-age=30', undefined, '30'],
    ['/invalid', 'max-age=soon', undefined],
    ['/conflict', 'max-age=20, max-age=60', undefined],
    ['/malformed', 'max-age=20, "oops"', undefined]
  ]
  for (const [url, cacheControl, , age] of cases) {
    app.get(url, { config: { cache: { ttl: 'origin' } } }, async (_request, reply) => {
      if (cacheControl !== undefined) reply.header('cache-control', cacheControl)
      if (age !== undefined) reply.header('age', age)
      return url
    })
  }
  for (const [url, , expected] of cases) {
    const response = await app.inject(url)
    t.equal(response.statusCode, 200, url)
    t.equal(response.headers['x-cache'], expected === undefined ? 'BYPASS' : 'MISS', url)
    t.equal((await stored(app, `view/${url}`))?.ttlMs, expected, `${url}: ${expected === undefined ? 'not stored' : `${expected} ms`}`)
  }
})

t.test('reply.cacheTtl overrides ttl: \'origin\' too', async (t) => {
  const app = await build(t, { redis })
  app.get('/o', { config: { cache: { ttl: 'origin' } } }, async (_request, reply) => {
    reply.header('cache-control', 'max-age=60').cacheTtl(9)
    return 'o'
  })
  await app.inject('/o')
  t.equal((await stored(app, 'view//o'))?.ttlMs, 9_000)
})

t.test('ttl takes a number of seconds or the word \'origin\', and nothing else', async (t) => {
  const plugin = { defaultTtl: 300 }
  t.match(normalizeRouteOptions({ ttl: 'origin' }, plugin, 'GET /'), { ttlMs: 300_000, ttlFromOrigin: true })
  t.match(normalizeRouteOptions({ ttl: 60 }, plugin, 'GET /'), { ttlMs: 60_000, ttlFromOrigin: false })
  t.match(normalizeRouteOptions(true, plugin, 'GET /'), { ttlMs: 300_000, ttlFromOrigin: false })
  for (const bad of ['Origin', 'forever', '60']) {
    t.throws(() => normalizeRouteOptions({ ttl: bad as 'origin' }, plugin, 'GET /x'), {
      code: 'FST_CACHE_INVALID_OPTION', option: 'config.cache (GET /x).ttl', message: /expected seconds \(a positive number\) or 'origin'/
    }, bad)
  }
  t.throws(() => normalizeRouteOptions({ ttl: -1 }, plugin, 'GET /x'), { code: 'FST_CACHE_INVALID_OPTION' })
  const app = await build(t, { redis })
  await t.rejects(async () => {
    app.get('/bad', { config: { cache: { ttl: 'never' as 'origin' } } }, async () => 'x')
    await app.ready()
  }, { code: 'FST_CACHE_INVALID_OPTION' }, 'a bad ttl fails startup')
})

t.test('cache-control is parsed as a list of directives, not matched by pattern', async (t) => {
  t.same(parseCacheControl('Public , Max-Age = 60,, no-cache="set-cookie, max-age=5"'), [
    { name: 'public', value: undefined },
    { name: 'max-age', value: '60' },
    { name: 'no-cache', value: 'set-cookie, max-age=5' }
  ], 'names lowercased, spaces and empty members skipped, a comma inside quotes kept')
  t.same(parseCacheControl('x="a\\"b\\\\c"'), [{ name: 'x', value: 'a"b\\c' }], 'quoted-pair escapes')
  t.same(parseCacheControl(''), [])
  for (const bad of ['max-age="60', 'max-age="60\\', 'max-age=60 junk', '=60', 'max-age=6"0"', '"max-age=60"']) {
    t.equal(parseCacheControl(bad), null, `malformed: ${bad}`)
  }
  t.equal(originFreshMs('private="x, max-age=5"', undefined), undefined, 'a max-age inside a quoted value is not one')
  t.equal(originFreshMs('max-age', undefined), 0, 'without a value: invalid, so stale')
  t.equal(originFreshMs('max-age=-5', undefined), 0)
  t.equal(originFreshMs('max-age=1.5', undefined), 0)
  t.equal(originFreshMs('max-age=99999999999999', undefined), 2 ** 31 * 1000, 'capped at 2^31 s (RFC 9111 §1.2.2)')
  t.equal(originFreshMs('s-maxage=bad, max-age=60', undefined), 0, 's-maxage governs a shared cache: an invalid one is stale')
  t.equal(originFreshMs('max-age=60', ['10', '50']), 50_000, 'the first member of a list-valued age')
  t.equal(originFreshMs('max-age=60', '10, 50'), 50_000)
  t.equal(originFreshMs('max-age=60', 'old'), 60_000, 'an invalid age is ignored')
  t.equal(originFreshMs('max-age=60', 90), 0, 'older than its lifetime: stale')
})
