import Fastify from 'fastify'
import t from 'tap'
import fastifyCache, { MemoryStore, type CacheStore } from '../../plugin/index.js'
import { build } from '../helpers/app.js'
import { redisForTest, sleep } from '../helpers/redis.js'

t.test('Redis with the bus: up, then down when the server dies; the breaker as it is', async (t) => {
  const own = await redisForTest(t, [], { own: true })
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(fastifyCache, { redis: own.url, prefix: own.prefix, bus: true, l1: true, lookupTimeoutMs: 100 })
  app.get('/page', { config: { cache: true } }, async () => 'page')
  await app.ready()
  t.same(await app.cache.health(), { store: 'up', bus: 'up', breaker: 'closed' })
  const errors = app.cache.stats().errors
  await own.kill()
  for (let i = 0; i < 100 && app.cache.stats().bus?.connected !== false; i++) await sleep(10)
  t.same(await app.cache.health({ timeoutMs: 100 }), { store: 'down', bus: 'down', breaker: 'closed' })
  t.equal(app.cache.stats().errors, errors, 'a health probe is not a counted store error')
  for (let i = 0; i < 10; i++) await app.inject('/page')
  t.equal((await app.cache.health({ timeoutMs: 100 })).breaker, 'open', 'requests opened the breaker')
})

t.test('the memory store, no bus: up and off', async (t) => {
  const app = await build(t)
  t.same(await app.cache.health(), { store: 'up', bus: 'off', breaker: 'closed' })
})

t.test('a custom store that hangs is down within the budget; a bad budget is refused', async (t) => {
  const memory = new MemoryStore({ maxBytes: 1_000_000 })
  const hanging: CacheStore = {
    get: async (key) => await memory.get(key),
    set: async (key, value, ttlMs) => await memory.set(key, value, ttlMs),
    add: async (key, value, ttlMs) => await memory.add(key, value, ttlMs),
    has: async () => await new Promise<boolean>(() => {}),
    delete: async (keys) => await memory.delete(keys),
    clear: async (prefix) => await memory.clear(prefix)
  }
  const app = await build(t, { cache: { store: hanging } })
  t.same(await app.cache.health({ timeoutMs: 20 }), { store: 'down', bus: 'off', breaker: 'closed' })
  for (const timeoutMs of [0, -1, Number.NaN, Infinity]) {
    await t.rejects(app.cache.health({ timeoutMs }), { code: 'FST_CACHE_INVALID_OPTION', option: 'timeoutMs' }, String(timeoutMs))
  }
})
