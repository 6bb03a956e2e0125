// @fastify/rate-limit counts and limits hits: its onRequest hook runs before the cache looks, so x-ratelimit-remaining
// is this request's count (4, 3, 2, 1, 0), then 429, on a cached route, whatever the order of registration. A long
// time window keeps the wall clock out of it.
import t from 'tap'
import fastifyRateLimit from '@fastify/rate-limit'
import fastifyCache from '../../plugin/index.js'
import { redisForFile } from '../helpers/redis.js'
import { appOn, cacheOptions, expectCache, onEachStore, ORDERS, ready } from './helpers.js'

const { redis } = await redisForFile(t)

for (const order of ORDERS) {
  onEachStore(t, redis, `@fastify/rate-limit registered ${order} the cache counts and limits hits`, async (t, backend) => {
    const app = await appOn(t, backend)
    const limits = { max: 5, timeWindow: '1 hour' }
    if (order === 'before') await app.register(fastifyRateLimit, limits)
    await app.register(fastifyCache, cacheOptions(backend))
    if (order === 'after') await app.register(fastifyRateLimit, limits)
    let renders = 0
    app.get('/page', { config: { cache: { ttl: 60 } } }, async () => {
      renders++
      return 'the cached page'
    })
    await ready(t, app, backend)

    const from = async (remoteAddress: string) => await app.inject({ url: '/page', remoteAddress })

    for (const [index, remaining] of [4, 3, 2, 1, 0].entries()) {
      const response = await from('10.0.0.1')
      const what = `client 1, request ${index + 1}`
      t.equal(response.statusCode, 200, `${what}: 200`)
      expectCache(t, response, index === 0 ? 'MISS' : 'HIT', what)
      t.equal(response.body, 'the cached page', `${what}: the page`)
      t.equal(response.headers['x-ratelimit-limit'], '5', `${what}: x-ratelimit-limit`)
      t.equal(response.headers['x-ratelimit-remaining'], String(remaining), `${what}: x-ratelimit-remaining ${remaining}`)
    }
    for (const attempt of [6, 7]) {
      const limited = await from('10.0.0.1')
      t.equal(limited.statusCode, 429, `client 1, request ${attempt}: 429, though the page is cached`)
      t.not(limited.body, 'the cached page', `client 1, request ${attempt}: not the page`)
      t.not(limited.headers['x-cache'], 'HIT', `client 1, request ${attempt}: not a hit`)
      t.equal(limited.headers['x-ratelimit-remaining'], '0', `client 1, request ${attempt}: nothing left`)
      t.ok(limited.headers['retry-after'] !== undefined, `client 1, request ${attempt}: retry-after`)
    }

    // Another client has its own count, and is served the page from the cache.
    for (const [index, remaining] of [4, 3].entries()) {
      const response = await from('10.0.0.2')
      const what = `client 2, request ${index + 1}`
      expectCache(t, response, 'HIT', what)
      t.equal(response.body, 'the cached page', `${what}: the page`)
      t.equal(response.headers['x-ratelimit-remaining'], String(remaining), `${what}: its own count, ${remaining}`)
    }
    t.equal(renders, 1, 'rendered once')
  })
}
