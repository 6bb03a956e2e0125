import t from 'tap'
import { FST_CACHE_CORRUPT_ENTRY, MemoryStore, toStoreKey } from '../../plugin/index.js'
import { encodeValue } from '../../plugin/entry.js'
import { build, logCollector, type LogLine } from '../helpers/app.js'
import { redisForFile, sleep, startRedis } from '../helpers/redis.js'

const { redis, client } = await redisForFile(t)

for (const backend of ['redis', 'memory'] as const) {
  t.test(`${backend}: data API`, async (t) => {
    const app = await build(t, backend === 'redis' ? { redis } : {})
    const cache = app.cache
    t.equal(cache.storeKind, backend)

    t.equal(await cache.get('nothing'), undefined)
    await cache.set('user:1', { name: 'Ada', tags: ['x'], n: 1.5, ok: true, none: null })
    t.same(await cache.get('user:1'), { name: 'Ada', tags: ['x'], n: 1.5, ok: true, none: null })
    await cache.set('str', '<script>alert(1)</script>')
    t.equal(await cache.get('str'), '<script>alert(1)</script>', 'strings come back as stored, never evaluated')
    t.equal(await cache.has('user:1'), true)
    t.equal(await cache.has('nope'), false)

    t.equal(await cache.add('once', 1), true)
    t.equal(await cache.add('once', 2), false)
    t.equal(await cache.get('once'), 1)

    await cache.setMany({ a: 1, b: [2] })
    await cache.setMany([['c', 'three']], 60)
    t.same(await cache.getMany(['a', 'b', 'c', 'missing']), [1, [2], 'three', undefined])

    t.equal(await cache.delete('a'), true)
    t.equal(await cache.delete('a'), false)
    t.equal(await cache.deleteMany(['b', 'c', 'never']), 2)
    t.same(await cache.getMany(['a', 'b', 'c']), [undefined, undefined, undefined])

    await cache.set('short', 'x', 0.1)
    await sleep(200)
    t.equal(await cache.get('short'), undefined, 'a ttl in seconds is honoured')

    const long = 'k'.repeat(1_000)
    await cache.set(long, 'long key')
    t.equal(await cache.get(long), 'long key', 'long keys work through hashing')
    t.equal(await cache.delete(long), true)

    await t.rejects(cache.set('bad', undefined), { code: 'FST_CACHE_INVALID_VALUE' })
    await t.rejects(cache.set('bad', () => 1), { code: 'FST_CACHE_INVALID_VALUE' })
    await t.rejects(cache.set('bad', 1, -5), { code: 'FST_CACHE_INVALID_OPTION' })
    await t.rejects(cache.get(''), { code: 'FST_CACHE_INVALID_KEY' })
    await t.rejects(cache.deleteMany('a' as never), { code: 'FST_CACHE_INVALID_KEY' })
    await t.rejects(cache.getMany('a' as never), { code: 'FST_CACHE_INVALID_KEY' })

    const keys = await cache.keys()
    t.same(keys.map(({ key }) => key).sort(), ['once', 'str', 'user:1'])
    t.ok(keys.every(({ ttlMs }) => ttlMs > 0))
  })

  t.test(`${backend}: keys() leaves the tag indexes out unless internal keys are asked for`, async (t) => {
    const app = await build(t, backend === 'redis' ? { redis } : {})
    await app.cache.set('tagged', 1, { tags: ['post:1'] })
    t.same((await app.cache.keys()).map(({ key }) => key), ['tagged'])
    const all = await app.cache.keys({ internal: true })
    t.same(all.map(({ key }) => key).sort(), ['__tags/post:1', 'tagged'])
    t.equal(all.find(({ key }) => key === '__tags/post:1')?.variants, 1, 'the index has one member')
    t.equal(all.find(({ key }) => key === 'tagged')?.variants, undefined, 'a plain value has no variants')
  })

  t.test(`${backend}: wrap computes once under concurrency`, async (t) => {
    const app = await build(t, backend === 'redis' ? { redis } : {})
    let calls = 0
    const compute = async (): Promise<{ at: number }> => {
      calls++
      await sleep(30)
      return { at: calls }
    }
    const results = await Promise.all(Array.from({ length: 50 }, async () => await app.cache.wrap('expensive', compute, { ttl: 60 })))
    t.equal(calls, 1)
    t.ok(results.every((result) => result.at === 1))
    t.same(await app.cache.wrap('expensive', compute), { at: 1 }, 'later calls are served from the store')
    t.equal(calls, 1)
    t.same(await app.cache.get('expensive'), { at: 1 }, 'wrap stores a plain value under its key')
    t.equal(await app.cache.wrap('undef', async () => undefined), undefined)
    t.equal(await app.cache.has('undef'), false, 'undefined is returned, not stored')
    await t.rejects(app.cache.wrap('throws', async () => { throw new Error('no') }), /no/)
    t.equal(await app.cache.wrap('throws', async () => 'then works'), 'then works', 'a failed computation is not cached')
  })

  t.test(`${backend}: memoize and deleteMemoized`, async (t) => {
    const app = await build(t, backend === 'redis' ? { redis } : {})
    let calls = 0
    async function square (n: number, options?: { plus: number }): Promise<number> {
      calls++
      return n * n + (options?.plus ?? 0)
    }
    const cachedSquare = app.cache.memoize(square, { ttl: 60 })
    t.equal(cachedSquare.name, 'square')
    t.equal(await cachedSquare(3), 9)
    t.equal(await cachedSquare(3), 9)
    t.equal(await cachedSquare(4), 16)
    t.equal(await cachedSquare(3, { plus: 1 }), 10)
    t.equal(await cachedSquare(3, { plus: 1 }), 10)
    t.equal(calls, 3, 'one run per argument list')

    t.equal(await app.cache.deleteMemoized(cachedSquare, 3), true, 'one call\'s entry')
    t.equal(await cachedSquare(3), 9)
    t.equal(calls, 4)
    t.equal(await cachedSquare(4), 16)
    t.equal(calls, 4, 'other entries survive')

    t.equal(await app.cache.deleteMemoized(square), true, 'the original function names the same entries')
    await cachedSquare(4)
    await cachedSquare(3, { plus: 1 })
    t.equal(calls, 6, 'every entry of the function is gone')

    const anonymous = app.cache.memoize(async (x: number) => x + 1, { name: 'plusOne' })
    t.equal(await anonymous(1), 2)
    t.throws(() => app.cache.memoize((() => async () => 1)()), { code: 'FST_CACHE_INVALID_OPTION' })
    t.throws(() => app.cache.memoize('nope' as never), { code: 'FST_CACHE_INVALID_OPTION' })
    await t.rejects(app.cache.deleteMemoized(async () => 1), { code: 'FST_CACHE_INVALID_KEY' })

    // Key order inside objects does not matter.
    const objects = app.cache.memoize(async (o: Record<string, number>) => { calls++; return Object.keys(o).length }, { name: 'objects' })
    const before = calls
    await objects({ a: 1, b: 2 })
    await objects({ b: 2, a: 1 })
    t.equal(calls, before + 1)
  })
}

t.test('clear() removes the plugin\'s prefix and leaves every other key alone', async (t) => {
  const app = await build(t, { redis })
  app.get('/page', { config: { cache: true } }, async () => 'page')
  await app.inject('/page')
  await app.cache.set('value', 1)
  const outside = `${redis.prefix}outside-the-prefix`
  await client.set(outside, 'keep me')
  await client.set(app.cache.prefix.slice(0, -1), 'the prefix without its colon')
  const removed = await app.cache.clear()
  t.equal(removed, 2)
  t.equal(await client.get(outside), 'keep me')
  t.equal(await client.get(app.cache.prefix.slice(0, -1)), 'the prefix without its colon')
  t.equal(await app.cache.has('value'), false)
  t.equal((await app.inject('/page')).headers['x-cache'], 'MISS')
})

t.test('clear() uses SCAN and UNLINK, never KEYS or FLUSHDB', async (t) => {
  // Its own server: MONITOR sees every client's commands, and on a shared one other tests' KEYS or DEL would show.
  const { redis: own, client: ownClient } = await redisForFile(t, { own: true })
  const app = await build(t, { redis: own })
  for (let i = 0; i < 1_200; i++) await app.cache.set(`bulk-${i}`, i)
  const monitor = await ownClient.monitor()
  const commands: string[] = []
  monitor.on('monitor', (_time: string, args: string[]) => commands.push(String(args[0]).toLowerCase()))
  t.equal(await app.cache.clear(), 1_200)
  await sleep(100)
  monitor.disconnect()
  t.ok(commands.includes('scan'))
  t.ok(commands.includes('unlink'))
  t.notOk(commands.some((command) => ['keys', 'flushdb', 'flushall', 'del'].includes(command)), 'no KEYS, FLUSHDB, FLUSHALL or DEL')
})

t.test('direct API calls reject with coded errors when Redis is down', async (t) => {
  const own = await startRedis([], { own: true })
  t.teardown(async () => await own.stop())
  const app = await build(t, { cache: { redis: own.url, prefix: 'down:' } })
  await app.cache.set('k', 1)
  await own.kill()
  const err = await app.cache.get('k').catch((e: unknown) => e) as Error & { code: string }
  t.equal(err.code, 'FST_CACHE_STORE_ERROR')
  t.ok(err.cause instanceof Error, 'the Redis error is the cause')
  await t.rejects(app.cache.set('k', 2), { code: 'FST_CACHE_STORE_ERROR' })
  await t.rejects(app.cache.delete('k'), { code: 'FST_CACHE_STORE_ERROR' })
  await t.rejects(app.cache.clear(), { code: 'FST_CACHE_STORE_ERROR' })
  const slow = await app.cache.has('k').catch((e: unknown) => e) as { code: string }
  t.match(slow.code, /^FST_CACHE_(STORE_ERROR|TIMEOUT)$/, 'a call that waits on reconnection times out with a code')
  t.equal(await app.cache.wrap('w', async () => 'computed anyway'), 'computed anyway', 'wrap fails open')
  const memo = app.cache.memoize(async (n: number) => n * 2, { name: 'double' })
  t.equal(await memo(21), 42, 'memoize fails open')
  await own.restart()
})

t.test('a value the store still holds reads as missing when it is corrupt or past its ttl; the corrupt one is logged', async (t) => {
  const { lines, logger } = logCollector('warn')
  const app = await build(t, { redis, logger })
  const cache = app.cache
  // Written behind the plugin's back with no expiry in Redis: only the entry itself can tell.
  await client.set(toStoreKey(cache.prefix, 'corrupt'), Buffer.from('not a fastify-cache entry'))
  await client.set(toStoreKey(cache.prefix, 'expired'), encodeValue('expired', 'old', 1_000, Date.now() - 60_000))
  await client.set(toStoreKey(cache.prefix, 'fresh'), encodeValue('fresh', 'new', 60_000))
  const before = cache.stats()
  const unreadable = (): LogLine[] => lines.filter((line) => line.msg === 'fastify-cache: unreadable value treated as missing')
  t.equal(await cache.get('expired'), undefined)
  t.same(unreadable(), [], 'an expired value is not an error')
  t.equal(await cache.get('corrupt'), undefined)
  t.equal(unreadable().length, 1, 'a corrupt one is')
  t.same(await cache.getMany(['fresh', 'expired', 'corrupt']), ['new', undefined, undefined])
  const after = cache.stats()
  t.equal(after.misses - before.misses, 4, 'each counts as a miss')
  t.equal(after.hits - before.hits, 1)
  t.equal(await cache.has('expired'), true, 'Redis still holds it: its header decided')

  const warnings = unreadable() as Array<LogLine & { cacheFailure?: string, err?: { code?: string, message?: string } }>
  t.equal(warnings.length, 1, 'logged once within the error log interval, though read twice')
  t.equal(warnings[0]?.cacheFailure, 'decode')
  t.equal(warnings[0]?.err?.code, 'FST_CACHE_CORRUPT_ENTRY')
  t.match(warnings[0]?.err?.message, /missing the FCE1 preamble/)

  let computed = 0
  t.equal(await cache.wrap('corrupt', () => { computed++; return 'recomputed' }), 'recomputed')
  t.equal(computed, 1, 'wrap computes over an unreadable value')
})

t.test('a store failing its own way still rejects with a coded error', async (t) => {
  let failure: () => Promise<never> = async () => await new Promise<never>(() => {})
  class FailingStore extends MemoryStore {
    override async get (_key: string): Promise<Buffer | undefined> {
      return await failure()
    }
  }
  const app = await build(t, { cache: { store: new FailingStore({ maxBytes: 1e6 }), operationTimeoutMs: 100 } })

  await t.rejects(app.cache.get('k'), { code: 'FST_CACHE_TIMEOUT', message: 'fastify-cache: store get took longer than 100ms' },
    'a hung store times out, and the timeout is not re-wrapped')

  failure = async () => await Promise.reject('disk on fire') // eslint-disable-line prefer-promise-reject-errors
  let err = await app.cache.get('k').catch((e: unknown) => e) as Error & { code: string }
  t.equal(err.code, 'FST_CACHE_STORE_ERROR')
  t.equal(err.message, 'fastify-cache: store get failed: disk on fire', 'a thrown string is the message')
  t.equal(err.cause, 'disk on fire')

  failure = async () => await Promise.reject(null) // eslint-disable-line prefer-promise-reject-errors
  err = await app.cache.get('k').catch((e: unknown) => e) as Error & { code: string }
  t.equal(err.code, 'FST_CACHE_STORE_ERROR')
  t.equal(err.message, 'fastify-cache: store get failed: null')

  const diskFull = Object.assign(new Error('no space left'), { code: 'ENOSPC' })
  failure = async () => { throw diskFull }
  err = await app.cache.get('k').catch((e: unknown) => e) as Error & { code: string }
  t.equal(err.code, 'FST_CACHE_STORE_ERROR', 'a code of another kind is wrapped')
  t.equal(err.message, 'fastify-cache: store get failed: no space left')
  t.equal(err.cause, diskFull)

  const corrupt = new FST_CACHE_CORRUPT_ENTRY('from the store')
  failure = async () => { throw corrupt }
  t.equal(await app.cache.get('k').catch((e: unknown) => e), corrupt, 'a coded error passes through as it is')
})
