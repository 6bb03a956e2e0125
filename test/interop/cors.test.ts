// @fastify/cors with a list of origins: its headers belong to each request (set in its onRequest hook, before the
// cache looks), so every origin gets its own access-control-allow-origin on a miss and on a hit, and an origin not
// allowed gets none, whatever the order of registration.
import t from 'tap'
import fastifyCors from '@fastify/cors'
import fastifyCache from '../../plugin/index.js'
import { redisForFile } from '../helpers/redis.js'
import { appOn, cacheOptions, expectCache, onEachStore, ORDERS, ready, varyOf } from './helpers.js'

const { redis } = await redisForFile(t)

const A = 'https://a.example'
const B = 'https://b.example'
const EVIL = 'https://evil.example'

for (const order of ORDERS) {
  onEachStore(t, redis, `@fastify/cors registered ${order} the cache: each origin gets its own allow-origin, on miss and hit`, async (t, backend) => {
    const app = await appOn(t, backend)
    const cors = { origin: [A, B], credentials: false, exposedHeaders: ['x-cache'] }
    if (order === 'before') await app.register(fastifyCors, cors)
    await app.register(fastifyCache, cacheOptions(backend))
    if (order === 'after') await app.register(fastifyCors, cors)
    let renders = 0
    app.get('/api/posts', { config: { cache: { ttl: 60 } } }, async () => {
      renders++
      return { posts: ['one', 'two'] }
    })
    await ready(t, app, backend)

    const get = async (origin: string | undefined) => await app.inject({ url: '/api/posts', headers: origin === undefined ? {} : { origin } })

    const first = await get(A)
    expectCache(t, first, 'MISS', 'origin A, cold')
    t.equal(first.headers['access-control-allow-origin'], A, 'A is allowed on the miss')

    // B may share A's entry (cors's Vary: Origin was set before the cache looked) or get a variant of its own; either
    // way the header is B's.
    const second = await get(B)
    t.equal(second.statusCode, 200)
    t.ok(['HIT', 'MISS'].includes(second.headers['x-cache'] as string), `origin B: served (${String(second.headers['x-cache'])})`)
    t.equal(second.headers['access-control-allow-origin'], B, 'origin B gets B, not the stored A')
    t.same(second.json(), { posts: ['one', 'two'] })

    for (const [who, origin, allowed] of [
      ['origin A again', A, A], ['origin B again', B, B], ['origin A a third time', A, A],
      ['an origin not allowed', EVIL, undefined], ['no origin (same-origin, curl)', undefined, undefined], ['origin B last', B, B]
    ] as const) {
      const response = await get(origin)
      t.equal(response.statusCode, 200, `${who}: 200`)
      if (who !== 'an origin not allowed' && who !== 'no origin (same-origin, curl)') expectCache(t, response, 'HIT', who)
      else t.ok(['HIT', 'MISS'].includes(response.headers['x-cache'] as string), `${who}: served by the cache or the handler`)
      t.equal(response.headers['access-control-allow-origin'], allowed, `${who}: access-control-allow-origin ${allowed ?? 'absent'}`)
      // @fastify/cors sets expose-headers on every response it handles, allowed origin or not: once, from this request.
      t.equal(response.headers['access-control-expose-headers'], 'x-cache', `${who}: expose-headers, once`)
      t.ok(varyOf(response).includes('origin'), `${who}: vary names origin`)
      t.same(response.json(), { posts: ['one', 'two'] }, `${who}: the page`)
    }
    t.ok(renders <= 4, `the handler ran at most once per distinct origin (${renders})`)
  })
}
