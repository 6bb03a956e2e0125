import t, { type Test } from 'tap'
import Fastify from 'fastify'
import fastifyCache, {
  DEFAULT_LOOKUP_TIMEOUT_MS, DEFAULT_PREFIX, DEFAULT_TTL_SECONDS, MemoryStore, toStoreKey
} from '../../plugin/index.js'
import type { DeleteOptions, FieldLock, GetFieldOptions, PageStore, SetFieldOptions } from '../../plugin/index.js'
import { normalizeOptions, normalizeRouteOptions } from '../../plugin/options.js'
import { logCollector } from '../helpers/app.js'
import { sleep, startRedis } from '../helpers/redis.js'

t.test('defaults', async (t) => {
  const options = normalizeOptions(undefined)
  t.equal(options.prefix, DEFAULT_PREFIX)
  t.equal(options.prefix, 'fastify-cache:')
  t.equal(options.defaultTtl, DEFAULT_TTL_SECONDS)
  t.equal(options.lookupTimeoutMs, DEFAULT_LOOKUP_TIMEOUT_MS)
  t.ok(DEFAULT_LOOKUP_TIMEOUT_MS >= 10 && DEFAULT_LOOKUP_TIMEOUT_MS <= 100, 'a budget of a few tens of ms')
  const route = normalizeRouteOptions(true, options, 'GET /')
  t.equal(route.ttlMs, DEFAULT_TTL_SECONDS * 1000)
  t.same([...route.statusCodes], [200])
  t.equal(route.queryString, undefined)
  t.equal(route.allowAuthorization, false)
})

const badPluginOptions: Array<[string, Record<string, unknown>]> = [
  ['prefix', { prefix: '' }],
  ['prefix', { prefix: 42 }],
  ['prefix', { prefix: 'has space:' }],
  ['prefix', { prefix: 'x'.repeat(200) }],
  ['defaultTtl', { defaultTtl: -1 }],
  ['defaultTtl', { defaultTtl: 0 }],
  ['defaultTtl', { defaultTtl: '300' }],
  ['defaultTtl', { defaultTtl: Number.POSITIVE_INFINITY }],
  ['store', { store: 'memcached' }],
  ['store', { store: { get () {} } }],
  ['store', { store: 42 }],
  ['redis', { redis: 'http://localhost' }],
  ['redis', { redis: 'not a url' }],
  ['redis', { redis: {} }],
  ['redis', { store: 'memory', redis: 'redis://127.0.0.1:1' }],
  ['lookupTimeoutMs', { lookupTimeoutMs: 0 }],
  ['breaker', { breaker: 5 }],
  ['breaker.threshold', { breaker: { threshold: 1.5 } }],
  ['breaker.cooldownMs', { breaker: { cooldownMs: -1 } }],
  ['breaker.nope', { breaker: { nope: 1 } }],
  ['memory', { memory: 'big' }],
  ['memory.maxBytes', { memory: { maxBytes: 0 } }],
  ['maxBodyBytes', { maxBodyBytes: 1.5 }],
  ['singleFlight', { singleFlight: 'cluster' }],
  ['redis', { redis: null }],
  ['timeout', { timeout: 10 }]
]

for (const [option, input] of badPluginOptions) {
  t.test(`bad plugin option ${option}: ${JSON.stringify(input)} throws at register`, async (t) => {
    const app = Fastify()
    t.teardown(async () => await app.close())
    await t.rejects(async () => await app.register(fastifyCache, input as never), { code: 'FST_CACHE_INVALID_OPTION', option })
  })
}

t.test('the error names the option and the Flask-Caching equivalent', async (t) => {
  t.throws(() => normalizeOptions({ timeout: 1 } as never), /invalid option "timeout".*"timeout" is "ttl"/)
  t.throws(() => normalizeOptions({ defaultTtl: -5 }), /defaultTtl.*-5/)
  t.throws(() => normalizeOptions({ store: { get () {} } } as never), /missing: set, add, has, delete, clear$/)
})

t.test('the error says what was given, whatever it was', async (t) => {
  const cases: Array<[unknown, string, RegExp]> = [
    [{ defaultTtl: () => 300 }, 'defaultTtl', /expected a positive number, got a function$/],
    [{ redis: null }, 'redis', /expected an ioredis client, Cluster or URL, got null$/],
    [{ redis: 42 }, 'redis', /expected an ioredis client, Cluster or URL, got 42$/],
    [{ singleFlight: 'cluster' }, 'singleFlight', /invalid option "singleFlight": expected one of 'fleet', 'process', got "cluster"$/],
    [42, 'options', /expected an object$/],
    ['fleet', 'options', /expected an object$/]
  ]
  for (const [input, option, message] of cases) {
    t.throws(() => normalizeOptions(input as never), { code: 'FST_CACHE_INVALID_OPTION', option, message }, String(message))
  }
  t.equal(normalizeOptions({ singleFlight: 'process' }).singleFlight, 'process')
  t.equal(normalizeOptions({}).singleFlight, 'fleet')
  t.equal(normalizeOptions({ tagPruneIntervalMs: 0 }).tagPruneIntervalMs, 0, '0 turns the sweep off')
  t.equal(normalizeOptions({ tagPruneIntervalMs: 1_000 }).tagPruneIntervalMs, 1_000)
})

const badRouteOptions: Array<[string, unknown]> = [
  ['config.cache (GET /x)', 'yes'],
  ['config.cache (GET /x)', []],
  ['config.cache (GET /x).ttl', { ttl: -1 }],
  ['config.cache (GET /x).ttl', { ttl: '60' }],
  ['config.cache (GET /x).key', { key: 42 }],
  ['config.cache (GET /x).key', { key: '' }],
  ['config.cache (GET /x).unless', { unless: true }],
  ['config.cache (GET /x).forceUpdate', { forceUpdate: 'always' }],
  ['config.cache (GET /x).filter', { filter: {} }],
  ['config.cache (GET /x).queryString', { queryString: 'page' }],
  ['config.cache (GET /x).queryString', { queryString: [''] }],
  ['config.cache (GET /x).vary', { vary: 'accept' }],
  ['config.cache (GET /x).vary', { vary: ['cookie'] }],
  ['config.cache (GET /x).statusCodes', { statusCodes: [] }],
  ['config.cache (GET /x).statusCodes', { statusCodes: [999] }],
  ['config.cache (GET /x).tags', { tags: 'post' }],
  ['config.cache (GET /x).staleWhileRevalidate', { staleWhileRevalidate: -1 }],
  ['config.cache (GET /x).grace', { grace: 'long' }],
  ['config.cache (GET /x).allowAuthorization', { allowAuthorization: 'yes' }],
  ['config.cache (GET /x).timeout', { timeout: 60 }]
]

for (const [option, cache] of badRouteOptions) {
  t.test(`bad route option ${JSON.stringify(cache)} throws when the route is added`, async (t) => {
    const app = Fastify()
    t.teardown(async () => await app.close())
    await app.register(fastifyCache, { store: 'memory' })
    t.throws(() => app.get('/x', { config: { cache: cache as never } }, async () => 'x'),
      { code: 'FST_CACHE_INVALID_OPTION', option })
  })
}

t.test('route options are normalised once, when the route is added', async (t) => {
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(fastifyCache, { store: 'memory' })
  let routeOptionReads = 0
  const cache = { get ttl () { routeOptionReads++; return 60 } }
  app.get('/once', { config: { cache } }, async () => 'x')
  await app.ready()
  const readsAtStartup = routeOptionReads
  t.ok(readsAtStartup >= 1)
  for (let i = 0; i < 5; i++) await app.inject('/once')
  t.equal(routeOptionReads, readsAtStartup, 'no per-request reads of config.cache')
})

t.test('a custom store is accepted by its method names, and used', async (t) => {
  const memory = new MemoryStore({ maxBytes: 1e6 })
  let gets = 0
  const custom = {
    get: async (key: string) => await memory.get(key),
    set: async (key: string, value: Buffer, ttl: number) => await memory.set(key, value, ttl),
    add: async (key: string, value: Buffer, ttl: number) => await memory.add(key, value, ttl),
    has: async (key: string) => await memory.has(key),
    delete: async (keys: string[], options?: DeleteOptions) => await memory.delete(keys, options),
    getField: async (key: string, field: string, options?: GetFieldOptions) => { gets++; return await memory.getField(key, field, options) },
    lockField: async (key: string, field: string, lock: FieldLock) => await memory.lockField(key, field, lock),
    unlockField: async (key: string, field: string, token: string) => await memory.unlockField(key, field, token),
    setField: async (key: string, field: string, value: Buffer, options: SetFieldOptions) => await memory.setField(key, field, value, options),
    fields: async (key: string) => await memory.fields(key),
    deleteField: async (key: string, field: string) => await memory.deleteField(key, field),
    clear: async (prefix: string) => await memory.clear(prefix)
  }
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(fastifyCache, { store: custom })
  app.get('/', { config: { cache: true } }, async () => 'custom')
  t.equal((await app.inject('/')).headers['x-cache'], 'MISS')
  t.equal((await app.inject('/')).headers['x-cache'], 'HIT')
  t.equal(gets, 2)
  t.equal(app.cache.storeKind, 'custom')
  t.same(await app.cache.keys(), [], 'a store without list() lists nothing')
})

t.test('without Redis the memory store is used and that is logged', async (t) => {
  const { lines, logger } = logCollector('info')
  const app = Fastify({ logger })
  t.teardown(async () => await app.close())
  await app.register(fastifyCache)
  await app.ready()
  t.equal(app.cache.storeKind, 'memory')
  t.ok(lines.some((line) => line.msg.includes('memory store')))
})

t.test("store 'redis' without a client is a coded error", async (t) => {
  const app = Fastify()
  t.teardown(async () => await app.close())
  await t.rejects(async () => await app.register(fastifyCache, { store: 'redis' }), { code: 'FST_CACHE_INVALID_OPTION', option: 'store' })
})

t.test('it cannot share an instance with another `cache` decorator', async (t) => {
  const app = Fastify()
  t.teardown(async () => await app.close())
  app.decorate('cache', {} as never)
  await t.rejects(async () => await app.register(fastifyCache, { store: 'memory' }), { code: 'FST_ERR_DEC_ALREADY_PRESENT' })
})

t.test('forceUpdate: true recomputes every request and stores each response; false is the default', async (t) => {
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(fastifyCache, { store: 'memory' })
  let calls = 0
  app.get('/always', { config: { cache: { key: 'shared', forceUpdate: true } } }, async () => `page ${++calls}`)
  app.get('/reader', { config: { cache: { key: 'shared' } } }, async () => 'the reader never computes')
  app.get('/never', { config: { cache: { forceUpdate: false } } }, async () => `never ${++calls}`)
  for (const n of [1, 2, 3]) {
    const forced = await app.inject('/always')
    t.equal(forced.headers['x-cache'], 'MISS')
    t.equal(forced.body, `page ${n}`, 'the handler runs every time')
  }
  const read = await app.inject('/reader')
  t.equal(read.headers['x-cache'], 'HIT')
  t.equal(read.body, 'page 3', 'each forced response replaced the stored one')
  t.equal((await app.inject('/never')).headers['x-cache'], 'MISS')
  const cached = await app.inject('/never')
  t.equal(cached.headers['x-cache'], 'HIT')
  t.equal(cached.body, 'never 4')
  t.equal(calls, 4)
})

t.test('a custom store with close() is closed with the app', async (t) => {
  class ClosingStore extends MemoryStore {
    closes = 0
    async close (): Promise<void> {
      this.closes++
    }
  }
  const store = new ClosingStore({ maxBytes: 1e6 })
  const app = Fastify()
  await app.register(fastifyCache, { store })
  await app.ready()
  t.equal(app.cache.storeKind, 'custom')
  t.equal(store.closes, 0)
  await app.close()
  t.equal(store.closes, 1)
})

async function taggedMembers (t: Test, tagPruneIntervalMs: number): Promise<{ members: () => Promise<string[]>, long: string }> {
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(fastifyCache, { store: 'memory', tagPruneIntervalMs })
  await app.cache.set('short', 1, { ttl: 0.05, tags: ['t'] })
  await app.cache.set('long', 2, { ttl: 60, tags: ['t'] })
  const index = toStoreKey(app.cache.prefix, '__tags/t')
  const members = async (): Promise<string[]> => (await (app.cache.store as PageStore).fields(index)).sort()
  const long = toStoreKey(app.cache.prefix, 'long')
  t.same(await members(), [long, toStoreKey(app.cache.prefix, 'short')].sort(), 'both entries are in the tag index')
  return { members, long }
}

t.test('tag indexes are swept every tagPruneIntervalMs', async (t) => {
  const { members, long } = await taggedMembers(t, 30)
  const deadline = Date.now() + 5_000
  while ((await members()).length > 1 && Date.now() < deadline) await sleep(20)
  t.same(await members(), [long], 'the expired member was dropped, the live one kept')
})

t.test('tagPruneIntervalMs: 0 never sweeps', async (t) => {
  const { members, long } = await taggedMembers(t, 0)
  await sleep(300)
  t.equal((await members()).length, 2, 'the expired member is still listed')
  t.ok((await members()).includes(long))
})

t.test('a bus that cannot subscribe in time does not hold registration: it is logged, and stays down', async (t) => {
  const dead = await startRedis([], { own: true })
  t.teardown(async () => await dead.stop())
  await dead.kill()
  const { lines, logger } = logCollector('warn')
  const app = Fastify({ logger })
  t.teardown(async () => await app.close())
  await app.register(fastifyCache, { redis: dead.url, bus: true, l1: true, operationTimeoutMs: 200 })
  await app.ready()
  t.ok(lines.some((line) => line.msg === 'fastify-cache: the invalidation bus is not up yet; L1 stays off until it is'))
  t.equal(app.cache.stats().bus?.connected, false)
})
