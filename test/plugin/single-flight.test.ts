import t from 'tap'
import Fastify from 'fastify'
import { CacheCounters } from '../../plugin/stats.js'
import { FailOpen } from '../../plugin/fail-open.js'
import { FleetLocks, type FleetWait } from '../../plugin/fleet-locks.js'
import { decodePage, type PageEntry } from '../../plugin/entry.js'
import { encodePage } from '../../plugin/entry.js'
import { normalizeOptions } from '../../plugin/options.js'
import { RedisStore } from '../../plugin/stores/redis.js'
import { build } from '../helpers/app.js'
import { fleetLocks, redisForFile, sleep } from '../helpers/redis.js'

const { redis, client } = await redisForFile(t)

t.test('100 concurrent cold requests run the handler once and all get the same response', async (t) => {
  const app = await build(t, { redis })
  let calls = 0
  app.get('/cold', { config: { cache: true } }, async (_request, reply) => {
    calls++
    await sleep(100)
    return reply.type('text/html').send('<h1>computed once</h1>')
  })
  await app.ready()
  const responses = await Promise.all(Array.from({ length: 100 }, async () => await app.inject('/cold')))
  t.equal(calls, 1, 'one handler run')
  t.ok(responses.every((response) => response.statusCode === 200 && response.body === '<h1>computed once</h1>'))
  t.ok(responses.every((response) => response.headers['content-type'] === 'text/html'))
  const labels = responses.map((response) => response.headers['x-cache'])
  t.equal(labels.filter((label) => label === 'MISS').length, 1, 'one MISS')
  t.equal(labels.filter((label) => label === 'HIT').length, 99, 'the rest are served the shared result')
  t.equal(app.cache.stats().coalesced, 99)
})

t.test('when the handler throws, waiters compute for themselves and nothing hangs', async (t) => {
  const app = await build(t, { redis })
  let calls = 0
  app.get('/flaky', { config: { cache: true } }, async () => {
    calls++
    await sleep(50)
    if (calls === 1) throw new Error('first call fails')
    return 'recovered'
  })
  await app.ready()
  const responses = await Promise.all(Array.from({ length: 20 }, async () => await app.inject('/flaky')))
  const statuses = responses.map((response) => response.statusCode)
  t.equal(statuses.filter((status) => status === 500).length, 1, 'only the failing call failed')
  t.equal(statuses.filter((status) => status === 200).length, 19)
  t.ok(responses.filter((response) => response.statusCode === 200).every((response) => response.body === 'recovered'))
  t.ok(calls < 20, `the recovery was shared too (${calls} handler runs)`)
  t.equal((await app.inject('/flaky')).headers['x-cache'], 'HIT')
})

t.test('an uncacheable response is not shared with waiters', async (t) => {
  const app = await build(t, { redis })
  let calls = 0
  app.get('/personal', { config: { cache: true } }, async (_request, reply) => {
    const n = ++calls
    await sleep(30)
    return reply.header('set-cookie', `sid=${n}`).send(`for ${n}`)
  })
  await app.ready()
  const responses = await Promise.all(Array.from({ length: 5 }, async () => await app.inject('/personal')))
  t.equal(calls, 5, 'each request computed its own response')
  t.equal(new Set(responses.map((response) => response.headers['set-cookie'])).size, 5, 'no cookie was handed to another request')
})

t.test('a leader that never replies releases its waiters after lockTimeoutMs', async (t) => {
  const app = await build(t, { redis, cache: { lockTimeoutMs: 100 } })
  let calls = 0
  app.get('/hijack', { config: { cache: true } }, async (_request, reply) => {
    calls++
    if (calls === 1) {
      reply.hijack()
      reply.raw.end('hijacked')
      return reply
    }
    return 'normal'
  })
  await app.ready()
  const [first, second] = await Promise.all([app.inject('/hijack'), (async () => { await sleep(10); return await app.inject('/hijack') })()])
  t.equal(first.body, 'hijacked')
  t.equal(second.body, 'normal', 'the waiter gave up waiting and computed')
})

t.test('FleetLocks.awaitRelease: a waiter on another process\'s lock', async (t) => {
  const log = Fastify({ logger: false }).log
  const store = new RedisStore(client)
  const options = normalizeOptions({})
  const locksWith = (lockTimeoutMs: number): { awaitFleet: (key: string, variant: string) => Promise<FleetWait<PageEntry>> } => {
    const locks = new FleetLocks(store, new FailOpen(options, new CacheCounters(), log), { lockTimeoutMs, lookupTimeoutMs: options.lookupTimeoutMs })
    const fresh = (read: { value: Buffer | undefined }): PageEntry | undefined => {
      const entry = read.value === undefined ? undefined : decodePage(read.value)
      return entry !== undefined && entry.createdAt + entry.ttlMs > Date.now() ? entry : undefined
    }
    return { awaitFleet: async (key, variant) => await locks.awaitRelease(key, variant, fresh, log) }
  }
  const holder = { token: 'holder', ttlMs: 5_000 }
  let n = 0
  /** A page key of its own, locked by `holder`, with another variant stored so the key outlives short locks. */
  const lockedKey = async (ttlMs = holder.ttlMs): Promise<string> => {
    const key = `${redis.prefix}await-${++n}`
    await store.setField(key, 'other', Buffer.from('x'), { ttlMs: 60_000, maxFields: 10 })
    t.equal(await store.lockField(key, 'v', { ...holder, ttlMs }), true)
    return key
  }
  const page = encodePage({
    status: 200, headers: {}, body: Buffer.from('the holder\'s page'), createdAt: Date.now(), ttlMs: 60_000, etag: '"e"', staleMs: 0, tags: []
  })

  t.test('gets the page its holder stores', async (t) => {
    const key = await lockedKey()
    setTimeout(() => { store.setField(key, 'v', page, { ttlMs: 60_000, maxFields: 10, unlock: holder.token }).catch(t.error) }, 30)
    const waited = await locksWith(5_000).awaitFleet(key, 'v')
    t.equal(waited.entry?.body.toString(), "the holder's page")
    t.equal(waited.token, undefined, 'and computes nothing')
  })

  t.test('takes over the lock of a holder that died, with the version of now', async (t) => {
    const key = await lockedKey(50)
    const waited = await locksWith(5_000).awaitFleet(key, 'v')
    t.type(waited.token, 'string')
    t.equal(waited.version, 0)
    t.same(await fleetLocks(client, key), [`${key} v`], 'the lock is the waiter\'s now')
    t.equal(await store.unlockField(key, 'v', waited.token as string), true)
  })

  t.test('computes without a lock once the holder released it without a page', async (t) => {
    const key = await lockedKey()
    setTimeout(() => { store.unlockField(key, 'v', holder.token).catch(t.error) }, 30)
    t.same(await locksWith(5_000).awaitFleet(key, 'v'), {})
    t.same(await fleetLocks(client, key), [], 'and takes none')
  })

  t.test('stops waiting when the key turns to foreign data (which carries no lock)', async (t) => {
    const key = await lockedKey()
    setTimeout(() => { client.set(key, 'not a page hash').catch(t.error) }, 30)
    const started = Date.now()
    t.same(await locksWith(5_000).awaitFleet(key, 'v'), {})
    t.ok(Date.now() - started < 2_000, 'long before lockTimeoutMs')
  })

  t.test('takes over at once a lock whose expiry lies past its own lock timeout (one planted far ahead)', async (t) => {
    const key = await lockedKey(10_000)
    const waited = await locksWith(100).awaitFleet(key, 'v')
    t.type(waited.token, 'string', 'the lock is the waiter\'s')
    t.same(await fleetLocks(client, key), [`${key} v`])
    t.equal(await store.lockField(key, 'v', { token: 'other', ttlMs: 5_000 }), false, 'and it is live')
  })

  t.test('gives up after its own lockTimeoutMs on a lock still held (a clock the test moves)', async (t) => {
    const key = await lockedKey(60_000)
    const clock = { now: 0, polls: 0 }
    const locks = new FleetLocks(store, new FailOpen(options, new CacheCounters(), log), { lockTimeoutMs: 60_000, lookupTimeoutMs: 1_000 },
      { now: () => clock.now, sleep: async (ms) => { clock.now += ms; clock.polls++ } })
    t.same(await locks.awaitRelease(key, 'v', () => undefined, log), {}, 'neither a page nor a lock: compute without one')
    t.ok(clock.now >= 60_000, `gave up once its own ${clock.now} ms had passed, after ${clock.polls} polls`)
    t.equal(await store.lockField(key, 'v', { token: 'other', ttlMs: 60_000 }), false, "the holder's lock is left alone")
  })
})
