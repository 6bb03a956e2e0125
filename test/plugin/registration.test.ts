import t from 'tap'
import Fastify from 'fastify'
import fastifyRedis from '@fastify/redis'
import fp from 'fastify-plugin'
import fastifyCache from '../../plugin/index.js'
import { logCollector } from '../helpers/app.js'
import { redisForFile } from '../helpers/redis.js'

const { redis, client } = await redisForFile(t)
let apps = 0
const prefix = (): string => `${redis.prefix}reg${++apps}:`

t.test('routes declared before the plugin loaded (no await) are cached, at the root and in an earlier sibling', async (t) => {
  const app = Fastify()
  t.teardown(async () => await app.close())
  let runs = 0
  app.register(async (child) => {
    child.get('/sibling', { config: { cache: { ttl: 60 } } }, async () => `sibling ${++runs}`)
  })
  app.get('/early', { config: { cache: { ttl: 60 } } }, async () => `early ${++runs}`)
  app.register(fastifyCache, { store: 'memory', prefix: prefix() })
  app.get('/late', { config: { cache: { ttl: 60 } } }, async () => `late ${++runs}`)
  for (const url of ['/early', '/sibling', '/late']) {
    const first = await app.inject(url)
    const second = await app.inject(url)
    t.equal(first.headers['x-cache'], 'MISS', `${url} first`)
    t.equal(second.headers['x-cache'], 'HIT', `${url} second`)
    t.equal(second.body, first.body, `${url} served from the cache`)
  }
  t.equal(runs, 3, 'each handler ran once')
})

t.test('a route the plugin did not see being added, with bad options: logged with its name, served uncached', async (t) => {
  const { lines, logger } = logCollector('error')
  const app = Fastify({ logger })
  t.teardown(async () => await app.close())
  app.get('/bad', { config: { cache: { ttl: -1 } } }, async () => 'page')
  app.register(fastifyCache, { store: 'memory', prefix: prefix() })
  const first = await app.inject('/bad')
  const second = await app.inject('/bad')
  t.equal(first.body, 'page')
  t.equal(second.headers['x-cache'], undefined, 'not a cached route')
  const line = lines.find((l) => l.msg.includes('GET /bad is not cached'))
  t.ok(line, 'the log names the route')
  t.equal((line?.err as { code?: string } | undefined)?.code, 'FST_CACHE_INVALID_OPTION')
  t.equal(lines.filter((l) => l.msg.includes('is not cached')).length, 1, 'said once, not per request')
})

t.test('a route added after the plugin with bad options fails startup, naming the route', async (t) => {
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(fastifyCache, { store: 'memory', prefix: prefix() })
  t.throws(() => app.get('/bad', { config: { cache: { ttl: -1 } } }, async () => 'page'),
    { code: 'FST_CACHE_INVALID_OPTION', message: /GET \/bad/ })
})

t.test('@fastify/redis registered after fastify-cache (autoload order): the cache moves to it at ready', async (t) => {
  const app = Fastify()
  t.teardown(async () => await app.close())
  const keyPrefix = prefix()
  // As @fastify/autoload loads cache.ts before redis.ts: two fastify-plugin plugins, in that order.
  await app.register(fp(async (instance) => { await instance.register(fastifyCache, { prefix: keyPrefix }) }))
  await app.register(fp(async (instance) => { await instance.register(fastifyRedis, { url: redis.url }) }))
  app.get('/page', { config: { cache: { ttl: 60 } } }, async () => 'from redis')
  t.equal(app.cache.storeKind, 'memory', 'before ready, Redis is not there yet')
  await app.ready()
  t.equal(app.cache.storeKind, 'redis')
  t.equal((await app.inject('/page')).headers['x-cache'], 'MISS')
  t.equal((await app.inject('/page')).headers['x-cache'], 'HIT')
  t.equal(await client.exists(`${keyPrefix}view//page`), 1, 'the page is in the app\'s Redis')
  await app.cache.set('value', { in: 'redis' })
  t.same(await app.cache.get('value'), { in: 'redis' })
  t.equal(await client.exists(`${keyPrefix}value`), 1)
})
