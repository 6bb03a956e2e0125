// The `edge` option on a real Redis: which responses carry the CDN headers, and what they say.
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import type { FastifyCacheOptions } from '../../plugin/index.js'
import { build, logCollector } from '../helpers/app.js'
import { redisForFile } from '../helpers/redis.js'

const { redis } = await redisForFile(t)

/** Runs `fn` with the clock moved forward: a stored page ages without the test waiting for it. */
async function later<T> (ms: number, fn: () => Promise<T>): Promise<T> {
  const realNow = Date.now
  Date.now = () => realNow() + ms
  try {
    return await fn()
  } finally {
    Date.now = realNow
  }
}

async function blogLike (t: Parameters<typeof build>[0], cache: FastifyCacheOptions): Promise<FastifyInstance> {
  const app = await build(t, { redis, cache })
  app.get('/post/:id', {
    config: { cache: { ttl: 1800, unless: (request) => request.headers['x-admin'] === '1', tags: (request) => [`post:${request.params.id}`] } }
  }, async (request) => `<p>post ${(request.params as { id: string }).id}</p>`)
  app.get('/private', { config: { cache: true } }, async (_request, reply) => reply.header('cache-control', 'private').send('mine'))
  app.get('/missing', { config: { cache: true } }, async (_request, reply) => reply.code(404).send('no'))
  app.post('/post/:id', { config: { cache: true } }, async () => 'posted')
  app.get('/stale', { config: { cache: { ttl: 10, staleWhileRevalidate: 3600 } } }, async () => 'stale')
  return app
}

t.test('surrogate-key: a stored miss, and every hit, carry the prefix, the page key and its tags', async (t) => {
  const app = await blogLike(t, { edge: { tagHeader: 'surrogate-key', controlHeader: 'surrogate-control' }, l1: true })
  const prefix = app.cache.prefix
  const expected = `${prefix} view//post/1 post:1`
  const miss = await app.inject('/post/1')
  t.equal(miss.headers['x-cache'], 'MISS')
  t.equal(miss.headers['surrogate-key'], expected)
  t.equal(miss.headers['surrogate-control'], 'max-age=1800', 'the route ttl, for the CDN')
  const hit = await app.inject('/post/1')
  t.equal(hit.headers['x-cache'], 'HIT')
  t.equal(hit.headers['surrogate-key'], expected)
  t.equal(hit.headers['surrogate-control'], 'max-age=1800', 'the full ttl: the age header tells what is left')
  t.ok(hit.headers.age !== undefined)
  const local = await app.inject('/post/1') // the store's hit put the page in L1
  t.match(local.headers['cache-status'], /detail=l1/)
  t.equal(local.headers['surrogate-key'], expected, 'an L1 hit is tagged like any other')
  const head = await app.inject({ method: 'HEAD', url: '/post/1' })
  t.equal(head.headers['surrogate-key'], expected, 'HEAD is served from the GET entry, tags too')
  const revalidated = await app.inject({ url: '/post/1', headers: { 'if-none-match': String(hit.headers.etag) } })
  t.equal(revalidated.statusCode, 304)
  t.equal(revalidated.headers['surrogate-key'], expected, 'a 304 from the cache too')
  const stored = await app.cache.keys()
  t.ok(stored.some(({ key }) => key === 'view//post/1'), 'the page key is the one the API names')
})

t.test('never on a response the cache did not store or serve', async (t) => {
  const app = await blogLike(t, { edge: { tagHeader: 'surrogate-key', controlHeader: 'cdn-cache-control' } })
  for (const request of [
    { url: '/post/2', headers: { 'x-admin': '1' } }, // unless: a bypass
    { url: '/private' }, // not storable
    { url: '/missing' }, // a status not stored
    { url: '/post/2', method: 'POST' as const }, // a method that bypasses
    { url: '/post/2?utm=1' } // a query the route does not key
  ]) {
    const response = await app.inject(request)
    t.not(response.headers['x-cache'], 'HIT', `${request.url} is not served from the cache`)
    t.equal(response.headers['surrogate-key'], undefined, `${request.method ?? 'GET'} ${request.url}: no tags`)
    t.equal(response.headers['cdn-cache-control'], undefined, `${request.url}: no edge ttl`)
  }
  t.equal((await app.inject('/private')).headers['surrogate-key'], undefined, 'not on the second try either')
})

t.test('without the option, no edge header at all', async (t) => {
  const app = await blogLike(t, {})
  await app.inject('/post/3')
  const hit = await app.inject('/post/3')
  t.equal(hit.headers['x-cache'], 'HIT')
  t.equal(hit.headers['surrogate-key'], undefined)
  t.equal(hit.headers['surrogate-control'], undefined)
  await app.inject('/stale')
  const stale = await later(60_000, async () => await app.inject('/stale'))
  t.equal(stale.headers['x-cache'], 'STALE')
  t.equal(stale.headers['surrogate-key'], undefined)
})

t.test("cache-tag and edge-cache-tag: commas, each CDN's spelling", async (t) => {
  const cloudflare = await blogLike(t, { edge: { tagHeader: 'cache-tag' } })
  const cf = await cloudflare.inject('/post/4')
  t.equal(cf.headers['cache-tag'], `${cloudflare.cache.prefix},view//post/4,post:4`)
  t.equal(cf.headers['surrogate-control'], undefined, 'no control header unless asked')
  t.equal(cf.headers['cdn-cache-control'], undefined)
  const akamai = await blogLike(t, { edge: { tagHeader: 'edge-cache-tag', controlHeader: 'cdn-cache-control' } })
  const ak = await akamai.inject('/post/4')
  const prefix = akamai.cache.prefix.replaceAll(':', '%3A')
  t.equal(ak.headers['edge-cache-tag'], `${prefix},view%2F%2Fpost%2F4,post%3A4`)
  t.equal(ak.headers['cdn-cache-control'], 'max-age=1800')
  t.equal((await akamai.inject('/post/4')).headers['edge-cache-tag'], ak.headers['edge-cache-tag'], 'the hit says the same')
})

t.test("the handler's own header: its tokens follow the plugin's; its control header wins", async (t) => {
  const app = await build(t, { redis, cache: { edge: { tagHeader: 'surrogate-key', controlHeader: 'surrogate-control' } } })
  app.get('/shop', { config: { cache: { ttl: 60, tags: ['shop'] } } }, async (_request, reply) =>
    reply.header('surrogate-key', 'product-9 post:1,shop').header('surrogate-control', 'max-age=5').send('shop'))
  app.get('/lines', { config: { cache: true } }, async (_request, reply) =>
    reply.header('surrogate-key', ['a', 'b c', 'two%20words']).send('lines'))
  const expected = `${app.cache.prefix} view//shop shop product-9 post:1`
  const miss = await app.inject('/shop')
  t.equal(miss.headers['x-cache'], 'MISS')
  t.equal(miss.headers['surrogate-key'], expected, 'merged, without repeats')
  t.equal(miss.headers['surrogate-control'], 'max-age=5')
  const hit = await app.inject('/shop')
  t.equal(hit.headers['x-cache'], 'HIT')
  t.equal(hit.headers['surrogate-key'], expected, 'the stored header merged the same way')
  t.equal(hit.headers['surrogate-control'], 'max-age=5')
  const lines = await app.inject('/lines')
  t.equal(lines.headers['surrogate-key'], `${app.cache.prefix} view//lines a b c two%20words`, 'a header given as lines')
})

t.test("another plugin's header, set before the lookup: merged on a miss and a hit; its control header kept", async (t) => {
  const app = await build(t, { redis, cache: { edge: { tagHeader: 'surrogate-key', controlHeader: 'surrogate-control' } } })
  app.addHook('onRequest', async (request, reply) => {
    if (request.headers['x-tenant'] !== undefined) reply.header('surrogate-key', `tenant-${String(request.headers['x-tenant'])}`)
    if (request.headers['x-edge-ttl'] !== undefined) reply.header('surrogate-control', `max-age=${String(request.headers['x-edge-ttl'])}`)
  })
  app.get('/page', { config: { cache: { ttl: 60, tags: ['page'] } } }, async () => 'page')
  const expected = `${app.cache.prefix} view//page page`
  const miss = await app.inject({ url: '/page', headers: { 'x-tenant': '1' } })
  t.equal(miss.headers['x-cache'], 'MISS')
  t.equal(miss.headers['surrogate-key'], `${expected} tenant-1`)
  t.equal(miss.headers['surrogate-control'], 'max-age=60')
  const plain = await app.inject('/page')
  t.equal(plain.headers['x-cache'], 'HIT')
  t.equal(plain.headers['surrogate-key'], expected, "the other request's header was not stored")
  const tenant = await app.inject({ url: '/page', headers: { 'x-tenant': '2', 'x-edge-ttl': '7' } })
  t.equal(tenant.headers['x-cache'], 'HIT')
  t.equal(tenant.headers['surrogate-key'], `${expected} tenant-2`)
  t.equal(tenant.headers['surrogate-control'], 'max-age=7')
  const ttlOnly = await app.inject({ url: '/page', headers: { 'x-edge-ttl': '9' } })
  t.equal(ttlOnly.headers['surrogate-key'], expected)
  t.equal(ttlOnly.headers['surrogate-control'], 'max-age=9')
  t.equal((await app.inject('/page')).headers['surrogate-control'], 'max-age=60', 'and none of it sticks')
})

t.test('a stale page served while it is refreshed, and one served in grace, are tagged', async (t) => {
  const app = await build(t, { redis, cache: { edge: { tagHeader: 'surrogate-key', controlHeader: 'surrogate-control' } } })
  let failing = false
  app.get('/swr', { config: { cache: { ttl: 10, staleWhileRevalidate: 3600, tags: ['swr'] } } }, async () => 'swr')
  app.get('/grace', { config: { cache: { ttl: 10, grace: 3600, tags: ['g'] } } }, async () => {
    if (failing) throw new Error('database down')
    return 'good'
  })
  await app.inject('/swr')
  await app.inject('/grace')
  failing = true
  const [swr, grace] = await later(60_000, async () => [await app.inject('/swr'), await app.inject('/grace')])
  t.equal(swr.headers['x-cache'], 'STALE')
  t.equal(swr.headers['surrogate-key'], `${app.cache.prefix} view//swr swr`)
  t.equal(swr.headers['surrogate-control'], 'max-age=10')
  t.ok(Number(swr.headers.age) >= 60, 'its age is past the ttl: a CDN takes it as stale too')
  t.equal(grace.headers['x-cache'], 'STALE')
  t.equal(grace.statusCode, 200)
  t.equal(grace.body, 'good')
  t.equal(grace.headers['surrogate-key'], `${app.cache.prefix} view//grace g`)
  t.equal(grace.headers['surrogate-control'], 'max-age=10')
})

t.test('a tag list past the header limit is cut, and said so in the log (once per interval)', async (t) => {
  const { lines, logger } = logCollector('warn')
  const app = await build(t, { redis, logger, cache: { edge: { tagHeader: 'edge-cache-tag' } } })
  const tags = Array.from({ length: 200 }, (_, i) => `t${i}`)
  app.get('/many', { config: { cache: { tags } } }, async () => 'many')
  const miss = await app.inject('/many')
  const hit = await app.inject('/many')
  for (const response of [miss, hit]) {
    const tokens = String(response.headers['edge-cache-tag']).split(',')
    t.equal(tokens.length, 128, "Akamai's 128 tags")
    t.same(tokens.slice(1, 3), ['view%2F%2Fmany', 't0'], 'the prefix and the key come first, so clear and delete still reach it')
    t.equal(tokens.at(-1), 't125')
  }
  const warned = lines.filter((line) => line.cacheFailure === 'edge-cut')
  t.equal(warned.length, 1)
  t.match(warned[0]?.msg, /edge-cache-tag header's limits; the last 74 were left out/)
})
