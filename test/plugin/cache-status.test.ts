import t from 'tap'
import { parseList, Token } from 'structured-headers'
import { build } from '../helpers/app.js'
import { redisForFile } from '../helpers/redis.js'

const { redis } = await redisForFile(t)

/** The one member of a Cache-Status header, parsed as RFC 9211 defines it (a structured-field list). */
function statusOf (header: unknown): { cache: string, params: Record<string, unknown> } {
  t.type(header, 'string', 'cache-status is present')
  const members = parseList(String(header))
  t.equal(members.length, 1, 'one cache named')
  const [item, params] = members[0] as [unknown, Map<string, unknown>]
  const plain: Record<string, unknown> = {}
  for (const [name, value] of params) plain[name] = value instanceof Token ? value.toString() : value
  return { cache: item instanceof Token ? item.toString() : String(item), params: plain }
}

t.test('cache-status (RFC 9211) on every response of a cached route', async (t) => {
  const app = await build(t, { redis, cache: { l1: { ttl: 60 } } })
  let version = 0
  app.get('/page', { config: { cache: { ttl: 60, queryString: true, unless: (request) => request.headers['x-user'] !== undefined } } },
    async () => `page v${++version}`)
  app.get('/swr', { config: { cache: { ttl: 0.001, staleWhileRevalidate: 60 } } }, async () => `swr v${++version}`)
  app.post('/page', { config: { cache: true } }, async () => 'posted')
  await app.ready()

  const miss = await app.inject('/page')
  t.same(statusOf(miss.headers['cache-status']), { cache: 'fastify-cache', params: { fwd: 'uri-miss', stored: true } })
  t.equal(miss.headers['x-cache'], 'MISS', 'x-cache stays')
  const hit = statusOf((await app.inject('/page?')).headers['cache-status'])
  t.equal(hit.params.hit, true)
  t.ok(typeof hit.params.ttl === 'number' && hit.params.ttl > 50 && hit.params.ttl <= 60, `ttl is the freshness left (${String(hit.params.ttl)})`)
  // L1 keeps what the store took, once the write is confirmed: until then hits come from Redis.
  let local = statusOf((await app.inject('/page')).headers['cache-status'])
  for (let attempt = 0; attempt < 200 && local.params.detail === undefined; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 10))
    local = statusOf((await app.inject('/page')).headers['cache-status'])
  }
  t.same([local.params.hit, local.params.detail], [true, 'l1'], 'a hit from process memory says so')
  t.same(statusOf((await app.inject('/page?lang=fr')).headers['cache-status']).params, { fwd: 'vary-miss', stored: true },
    'another variant of a stored URI')
  t.same(statusOf((await app.inject({ url: '/page', headers: { 'x-user': 'a' } })).headers['cache-status']).params, { fwd: 'bypass' })
  t.same(statusOf((await app.inject({ method: 'POST', url: '/page' })).headers['cache-status']).params, { fwd: 'method' })

  await app.inject('/swr')
  await new Promise((resolve) => setTimeout(resolve, 20)) // past its 1 ms ttl
  const stale = statusOf((await app.inject('/swr')).headers['cache-status'])
  t.equal(stale.params.hit, true)
  t.equal(stale.params.fwd, 'stale')
  t.ok(typeof stale.params.ttl === 'number' && stale.params.ttl < 0, `a stale page's ttl is negative (${String(stale.params.ttl)})`)
})

t.test('requests that waited on another computing the page are marked collapsed', async (t) => {
  const app = await build(t, { redis })
  let release!: () => void
  let entered!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  const inside = new Promise<void>((resolve) => { entered = resolve })
  app.get('/cold', { config: { cache: true } }, async () => { entered(); await gate; return 'cold' })
  await app.ready()
  // Sent together, the two share one lookup; the first to go on leads, and the other waits on its flight.
  const first = app.inject('/cold')
  const second = app.inject('/cold')
  await inside
  release()
  const statuses = (await Promise.all([first, second])).map((response) => statusOf(response.headers['cache-status']).params)
  t.same(statuses.sort((a, b) => Object.keys(a).length - Object.keys(b).length), [
    { fwd: 'uri-miss', stored: true },
    { fwd: 'uri-miss', collapsed: true }
  ])
})

t.test('the plugin options cacheStatus and xCache turn each header off', async (t) => {
  for (const [options, expected] of [[{ cacheStatus: false }, [false, true]], [{ xCache: false }, [true, false]]] as const) {
    const app = await build(t, { cache: options })
    app.get('/', { config: { cache: true } }, async () => 'x')
    const response = await app.inject('/')
    t.same([response.headers['cache-status'] !== undefined, response.headers['x-cache'] !== undefined], expected, JSON.stringify(options))
    t.equal(app.cache.stats().misses, 1, 'still counted')
  }
  await t.rejects(async () => await build(t, { cache: { xCache: 'no' as never } }), { code: 'FST_CACHE_INVALID_OPTION', option: 'xCache' })
})
