// @fastify/sensible: its error replies (reply.notFound(), httpErrors) are never cached, and a page that later exists
// is rendered, not its 404. @fastify/under-pressure: its 503 comes from an onRequest hook, before the cache looks, so
// it is never stored and never replaced by a hit; its status route works beside the cached ones.
import t from 'tap'
import type { FastifyReply, FastifyRequest } from 'fastify'
import fastifySensible from '@fastify/sensible'
import fastifyUnderPressure from '@fastify/under-pressure'
import fastifyCache from '../../plugin/index.js'
import { redisForFile } from '../helpers/redis.js'
import { appOn, cacheOptions, expectCache, expectNotHit, onEachStore, ORDERS, ready } from './helpers.js'

const { redis } = await redisForFile(t)

for (const order of ORDERS) {
  onEachStore(t, redis, `@fastify/sensible registered ${order} the cache: its errors are never cached`, async (t, backend) => {
    const app = await appOn(t, backend)
    if (order === 'before') await app.register(fastifySensible)
    await app.register(fastifyCache, cacheOptions(backend))
    if (order === 'after') await app.register(fastifySensible)
    const posts = new Map<string, string>([['1', 'first post']])
    let renders = 0
    app.get<{ Params: { id: string } }>('/post/:id', { config: { cache: { ttl: 60 } } }, async (request, reply) => {
      renders++
      const post = posts.get(request.params.id)
      if (post === undefined) return reply.notFound(`no post ${request.params.id}`)
      return post
    })
    app.get<{ Params: { id: string } }>('/thrown/:id', { config: { cache: { ttl: 60 } } }, async (request) => {
      const post = posts.get(request.params.id)
      if (post === undefined) throw app.httpErrors.notFound('gone')
      return post
    })
    let unavailable = true
    app.get('/flaky', { config: { cache: { ttl: 60 } } }, async () => {
      if (unavailable) throw app.httpErrors.serviceUnavailable('try later')
      return 'back'
    })
    await ready(t, app, backend)

    expectCache(t, await app.inject('/post/1'), 'MISS', 'a post that exists')
    const hit = await app.inject('/post/1')
    expectCache(t, hit, 'HIT', 'a post that exists, again')
    t.equal(hit.body, 'first post')

    for (const [url, message] of [['/post/2', 'no post 2'], ['/thrown/2', 'gone']] as const) {
      for (const n of [1, 2, 3]) {
        const response = await app.inject(url)
        expectNotHit(t, response, `${url}, request ${n}`)
        t.equal(response.statusCode, 404, `${url}, request ${n}: 404`)
        t.equal(response.json().message, message, `${url}, request ${n}: sensible's error`)
      }
    }
    t.equal(renders, 4, 'the post rendered once, its 404 each time')
    posts.set('2', 'second post')
    for (const [url, label] of [['/post/2', 'MISS'], ['/post/2', 'HIT'], ['/thrown/2', 'MISS'], ['/thrown/2', 'HIT']] as const) {
      const response = await app.inject(url)
      expectCache(t, response, label, `${url} once it exists`)
      t.equal(response.statusCode, 200)
      t.equal(response.body, 'second post', `${url}: the post, not a stored 404`)
    }

    for (const n of [1, 2]) {
      const response = await app.inject('/flaky')
      expectNotHit(t, response, `/flaky 503, request ${n}`)
      t.equal(response.statusCode, 503, `/flaky, request ${n}: 503`)
    }
    unavailable = false
    expectCache(t, await app.inject('/flaky'), 'MISS', '/flaky once it is back')
    const back = await app.inject('/flaky')
    expectCache(t, back, 'HIT', '/flaky, again')
    t.equal(back.body, 'back')
  })
}

onEachStore(t, redis, '@fastify/under-pressure: its status route works beside cached routes, which still hit', async (t, backend) => {
  const app = await appOn(t, backend)
  await app.register(fastifyUnderPressure, { exposeStatusRoute: '/health', healthCheck: async () => true })
  await app.register(fastifyCache, cacheOptions(backend))
  app.get('/page', { config: { cache: { ttl: 60 } } }, async () => 'page')
  await ready(t, app, backend)
  for (const n of [1, 2]) {
    const health = await app.inject('/health')
    t.equal(health.statusCode, 200, `/health ${n}: 200`)
    t.same(health.json(), { status: 'ok' }, `/health ${n}: ok`)
    t.equal(health.headers['x-cache'], undefined, `/health ${n}: not a cached route`)
  }
  expectCache(t, await app.inject('/page'), 'MISS', 'page, first')
  expectCache(t, await app.inject('/page'), 'HIT', 'page, again')
})

for (const order of ORDERS) {
  onEachStore(t, redis, `@fastify/under-pressure registered ${order} the cache: its 503 is never stored, and no hit jumps it`, async (t, backend) => {
    const app = await appOn(t, backend)
    // The external check fails at startup, so every request meets the pressure handler; it sheds load while `shedding`.
    // (No timers: under-pressure samples nothing else here.)
    let shedding = true
    const pressure = {
      healthCheck: async () => false,
      exposeStatusRoute: '/health',
      pressureHandler: async (request: FastifyRequest, reply: FastifyReply) => {
        if (!shedding) return
        reply.header('retry-after', '10')
        throw Object.assign(new Error('under pressure'), { statusCode: 503 })
      }
    }
    if (order === 'before') await app.register(fastifyUnderPressure, pressure)
    await app.register(fastifyCache, cacheOptions(backend))
    if (order === 'after') await app.register(fastifyUnderPressure, pressure)
    let renders = 0
    app.get('/page', { config: { cache: { ttl: 60 } } }, async () => `page ${++renders}`)
    await ready(t, app, backend)

    for (const n of [1, 2]) {
      const shed = await app.inject('/page')
      t.equal(shed.statusCode, 503, `under pressure, cold, request ${n}: 503`)
      t.equal(shed.headers['retry-after'], '10')
      expectNotHit(t, shed, `under pressure, cold, request ${n}`)
    }
    shedding = false
    const miss = await app.inject('/page')
    expectCache(t, miss, 'MISS', 'relieved: the page, not a stored 503')
    t.equal(miss.statusCode, 200)
    t.equal(miss.body, 'page 1')
    expectCache(t, await app.inject('/page'), 'HIT', 'relieved, again')
    shedding = true
    const shedHit = await app.inject('/page')
    t.equal(shedHit.statusCode, 503, 'under pressure with the page cached: still 503 (the shedding runs first)')
    t.not(shedHit.headers['x-cache'], 'HIT', 'under pressure: not a hit')
    shedding = false
    const after = await app.inject('/page')
    expectCache(t, after, 'HIT', 'relieved again: the stored page')
    t.equal(after.statusCode, 200)
    t.equal(after.body, 'page 1', 'the page rendered once')
    t.equal(renders, 1)
  })
}
