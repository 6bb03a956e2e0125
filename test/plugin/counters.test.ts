import t from 'tap'
import { build } from '../helpers/app.js'
import { redisForFile } from '../helpers/redis.js'

const { redis } = await redisForFile(t)

for (const storeName of ['redis', 'memory'] as const) {
  t.test(`${storeName}: every response of a cached route is counted once, under its x-cache`, async (t) => {
    const app = await build(t, storeName === 'redis' ? { redis, cache: { l1: true } } : {})
    let fail = false
    app.get('/page', { config: { cache: { queryString: ['q'], grace: 60, ttl: 0.001, unless: (request) => request.headers['x-user'] !== undefined } } },
      async (_request, reply) => {
        if (fail) return await reply.code(503).send('down')
        return 'page'
      })
    app.get('/missing', { config: { cache: true } }, async (_request, reply) => await reply.code(404).send('no'))
    app.get('/cookie', { config: { cache: true } }, async (_request, reply) => { reply.header('set-cookie', 'a=1'); return 'c' })
    app.post('/page', { config: { cache: true } }, async () => 'posted')
    app.get('/hot', { config: { cache: true } }, async () => 'hot')
    await app.ready()
    const tally: Record<string, number> = { HIT: 0, MISS: 0, BYPASS: 0, STALE: 0 }
    const send = async (method: 'GET' | 'HEAD' | 'POST', url: string, headers: Record<string, string> = {}): Promise<void> => {
      const response = await app.inject({ method, url, headers })
      const label = String(response.headers['x-cache'])
      t.ok(label in tally, `${method} ${url}: ${label}`)
      tally[label] = (tally[label] ?? 0) + 1
    }
    await send('HEAD', '/page') // cold: the handler runs, nothing is stored
    await send('GET', '/page')
    await send('GET', '/page?q=1')
    await send('GET', '/page?q=1&other=2') // an unkeyed parameter: reads the variant, never writes it
    await send('GET', '/page', { 'x-user': 'alice' })
    await send('GET', '/page', { authorization: 'Bearer x' })
    await send('GET', '/missing')
    await send('GET', '/missing')
    await send('HEAD', '/missing')
    await send('GET', '/cookie')
    await send('POST', '/page')
    await send('GET', '/hot')
    await send('GET', '/hot')
    await send('HEAD', '/hot')
    await new Promise((resolve) => setTimeout(resolve, 5)) // past the 1 ms ttl: now within grace
    fail = true
    await send('GET', '/page') // grace: the last good page instead of the 503
    await send('HEAD', '/page?q=1')
    const stats = app.cache.stats()
    t.same({ HIT: stats.hits, MISS: stats.misses, BYPASS: stats.bypasses, STALE: stats.stale }, tally,
      'the counters equal the header tallies')
    t.ok(Object.values(tally).every((count) => count > 0), 'every label was seen')
  })
}

t.test('ttl 0 (Flask-Caching\'s "never expires") is refused with what to do instead', async (t) => {
  const app = await build(t)
  t.throws(() => app.get('/', { config: { cache: { ttl: 0 } } }, async () => 'x'),
    { code: 'FST_CACHE_INVALID_OPTION', option: 'config.cache (GET /).ttl', message: /never expires.*365 \* 24 \* 3600/ })
  await t.rejects(app.cache.set('k', 1, 0), { code: 'FST_CACHE_INVALID_OPTION', option: 'ttl', message: /never expires/ })
  t.throws(() => app.cache.memoize(async function f () { return 1 }, { ttl: 0 }), { code: 'FST_CACHE_INVALID_OPTION', option: 'memoize ttl', message: /never expires/ })
})
