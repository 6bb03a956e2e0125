import t from 'tap'
import { build } from '../helpers/app.js'
import { redisForFile } from '../helpers/redis.js'

const { redis } = await redisForFile(t)

t.test('headers set for this request before the cache looked are neither stored nor overwritten on a hit', async (t) => {
  const app = await build(t, { redis, cache: { prefix: `${redis.prefix}snapshot:` } })
  let counter = 0
  // Another plugin's hook, running before the lookup: a per-request counter and id, a header the route overrides.
  app.addHook('onRequest', async (request, reply) => {
    counter++
    reply.header('x-request-counter', String(counter)).header('x-request-id', request.id).header('cache-control', 'no-cache-default')
    reply.header('vary', 'Origin')
    reply.header('x-list', ['a', 'b'])
  })
  app.get('/page', { config: { cache: { ttl: 60 } } }, async (_request, reply) => {
    reply.header('x-route', 'made by the route').header('cache-control', 'public, max-age=60')
    reply.header('vary', 'Origin, X-Theme')
    return 'page'
  })
  const miss = await app.inject({ url: '/page', headers: { origin: 'https://a.example' } })
  t.equal(miss.headers['x-cache'], 'MISS')
  for (const n of [2, 3]) {
    const hit = await app.inject({ url: '/page', headers: { origin: `https://${n}.example` } })
    t.equal(hit.headers['x-cache'], 'HIT', 'Origin, there before the lookup, is not keyed: one page for every origin')
    t.equal(hit.headers['x-request-counter'], String(n), 'this request\'s counter, not the stored one')
    t.ok(hit.headers['x-request-id'] !== undefined && hit.headers['x-request-id'] !== miss.headers['x-request-id'], 'this request\'s id')
    t.equal(hit.headers['x-route'], 'made by the route', 'what the route made is stored')
    t.equal(hit.headers['cache-control'], 'public, max-age=60', 'a header the route changed is the route\'s')
    t.equal(hit.headers.vary, 'origin, x-theme')
    t.same(hit.headers['x-list'], ['a', 'b'], 'a repeated header set before the lookup is this request\'s')
  }
})

t.test('grace keeps the headers set for this request, and replaces those the failing handler set', async (t) => {
  let now = 1_000_000
  const app = await build(t, { redis, cache: { prefix: `${redis.prefix}snapshot-grace:` } })
  const realNow = Date.now
  Date.now = () => now
  t.teardown(() => { Date.now = realNow })
  let fail = false
  app.addHook('onRequest', async (_request, reply) => { reply.header('x-limit', String(now)) })
  app.get('/page', { config: { cache: { ttl: 1, grace: 60 } } }, async (_request, reply) => {
    if (fail) return await reply.code(503).header('x-failure', 'yes').send('down')
    return await reply.header('x-route', 'kept').send('good')
  })
  await app.inject('/page')
  now += 5_000
  fail = true
  const grace = await app.inject('/page')
  t.equal(grace.statusCode, 200)
  t.equal(grace.body, 'good')
  t.equal(grace.headers['x-cache'], 'STALE')
  t.equal(grace.headers['x-limit'], String(now), 'this request\'s header stays')
  t.equal(grace.headers['x-failure'], undefined, 'the failure\'s header goes')
  t.equal(grace.headers['x-route'], 'kept')
})
