// Registration order never turns caching off silently: routes declared before the cache has loaded (Fastify's classic
// style, without await; a sibling plugin registered first) are cached, and @fastify/redis registered after the cache
// (an autoload order: cache.ts before redis.ts) is the store once the app is ready.
import t from 'tap'
import Fastify from 'fastify'
import fastifyRedis from '@fastify/redis'
import fastifyCache from '../../plugin/index.js'
import { redisForFile } from '../helpers/redis.js'
import { appOn, cacheOptions, expectCache, onEachStore, ready } from './helpers.js'

const { redis, client } = await redisForFile(t)

onEachStore(t, redis, 'routes declared before the cache has loaded (register without await) are cached', async (t, backend) => {
  const app = await appOn(t, backend)
  // A route declared before register() is even called, then the plugin, then more routes: nothing awaited.
  app.get('/earliest', { config: { cache: { ttl: 60 } } }, async () => 'earliest')
  app.register(fastifyCache, cacheOptions(backend))
  app.get('/early', { config: { cache: { ttl: 60 } } }, async () => 'early')
  await ready(t, app, backend)
  for (const url of ['/earliest', '/early']) {
    expectCache(t, await app.inject(url), 'MISS', `${url}, first`)
    const hit = await app.inject(url)
    expectCache(t, hit, 'HIT', `${url}, second`)
    t.equal(hit.body, url.slice(1))
  }
})

onEachStore(t, redis, 'routes of a sibling plugin registered before the cache are cached', async (t, backend) => {
  const app = await appOn(t, backend)
  let renders = 0
  app.register(async function routes (child) {
    child.get('/sibling', { config: { cache: { ttl: 60 } } }, async () => `sibling ${++renders}`)
    child.register(async function nested (grandchild) {
      grandchild.get('/nested', { config: { cache: { ttl: 60 } } }, async () => 'nested')
    }, { prefix: '/deep' })
  })
  app.register(fastifyCache, cacheOptions(backend))
  await ready(t, app, backend)
  for (const url of ['/sibling', '/deep/nested']) {
    expectCache(t, await app.inject(url), 'MISS', `${url}, first`)
    expectCache(t, await app.inject(url), 'HIT', `${url}, second`)
  }
  t.equal(renders, 1, 'the sibling route rendered once')
})

t.test('@fastify/redis registered after the cache (autoload order): the cache uses it once the app is ready', async (t) => {
  const app = Fastify()
  t.teardown(async () => await app.close())
  const options = cacheOptions({ kind: 'redis', redis })
  await app.register(fastifyCache, options) // cache.ts
  await app.register(fastifyRedis, { url: redis.url }) // redis.ts
  app.get('/page', { config: { cache: { ttl: 60 } } }, async () => 'page in redis')
  await app.ready()
  t.equal(app.cache.storeKind, 'redis', 'the store is the app\'s redis')

  expectCache(t, await app.inject('/page'), 'MISS', 'first')
  const hit = await app.inject('/page')
  expectCache(t, hit, 'HIT', 'second')
  t.equal(hit.body, 'page in redis')
  const key = `${options.prefix!}view//page`
  t.equal(await client.exists(key), 1, `the page is in Redis under ${key}`)

  // Another instance on the same Redis and prefix, registered the usual way, is served that page.
  const other = Fastify()
  t.teardown(async () => await other.close())
  await other.register(fastifyRedis, { url: redis.url })
  await other.register(fastifyCache, options)
  other.get('/page', { config: { cache: { ttl: 60 } } }, async () => 'rendered by the other instance')
  const shared = await other.inject('/page')
  expectCache(t, shared, 'HIT', 'another instance')
  t.equal(shared.body, 'page in redis', 'the page the first instance stored')
})

t.test('without @fastify/redis anywhere, the cache stays on the memory store and caches', async (t) => {
  const app = Fastify()
  t.teardown(async () => await app.close())
  app.register(fastifyCache, cacheOptions({ kind: 'memory', redis }))
  app.get('/page', { config: { cache: { ttl: 60 } } }, async () => 'page in memory')
  await app.ready()
  t.equal(app.cache.storeKind, 'memory')
  expectCache(t, await app.inject('/page'), 'MISS', 'first')
  expectCache(t, await app.inject('/page'), 'HIT', 'second')
})
