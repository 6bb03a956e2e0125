// Headers belong to the response that made them. What other hooks put on the reply before the cache looked (a request
// id, a site-wide default) is this request's: neither stored nor overwritten on a hit. What the route produced (its
// handler, its own later hooks) is stored and restored. Representation headers come from the stored response.
import t from 'tap'
import fastifyCache from '../../plugin/index.js'
import { redisForFile } from '../helpers/redis.js'
import { appOn, cacheOptions, expectCache, onEachStore, ready } from './helpers.js'

const { redis } = await redisForFile(t)

onEachStore(t, redis, "a request id set before the lookup is this request's; the route's own headers are the stored ones", async (t, backend) => {
  const app = await appOn(t, backend, { genReqId: (() => { let id = 0; return () => `req-${++id}` })() })
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id)
    reply.header('content-language', 'en') // the site's default, which a page may override
  })
  await app.register(fastifyCache, cacheOptions(backend))
  let routeHookRuns = 0
  let renders = 0
  app.get('/fr', {
    config: { cache: { ttl: 60 } },
    // A route-level hook runs after the cache's lookup: on a hit it does not run, so what it set must be stored.
    preHandler: async (request, reply) => {
      routeHookRuns++
      reply.header('x-route-hook', `set by run ${routeHookRuns}`)
    }
  }, async (request, reply) => {
    renders++
    reply.header('content-language', 'fr')
    reply.header('x-rendered-by', `render ${renders}`)
    return await reply.type('text/plain; charset=utf-8').send('Bonjour')
  })
  app.get('/default', { config: { cache: { ttl: 60 } } }, async () => 'Hello')
  await ready(t, app, backend)

  const miss = await app.inject('/fr')
  expectCache(t, miss, 'MISS', 'first')
  t.equal(miss.headers['x-request-id'], 'req-1')
  for (const n of [2, 3]) {
    const hit = await app.inject('/fr')
    const what = `request ${n}`
    expectCache(t, hit, 'HIT', what)
    t.equal(hit.headers['x-request-id'], `req-${n}`, `${what}: its own request id, not the stored one`)
    t.equal(hit.headers['x-rendered-by'], 'render 1', `${what}: the handler's header is restored`)
    t.equal(hit.headers['x-route-hook'], 'set by run 1', `${what}: the route hook's header is restored`)
    t.equal(hit.headers['content-language'], 'fr', `${what}: content-language of the stored page, not the site default`)
    t.equal(hit.headers['content-type'], 'text/plain; charset=utf-8', `${what}: the stored content-type`)
    t.equal(hit.body, 'Bonjour')
  }
  t.same([renders, routeHookRuns], [1, 1], 'neither the handler nor the route hook ran on a hit')

  expectCache(t, await app.inject('/default'), 'MISS', '/default first')
  const hit = await app.inject('/default')
  expectCache(t, hit, 'HIT', '/default again')
  t.equal(hit.headers['x-request-id'], 'req-5', '/default: its own request id')
  t.equal(hit.headers['content-language'], 'en', '/default: the default, set by the hook')
})
