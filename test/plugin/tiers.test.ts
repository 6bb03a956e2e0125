import t from 'tap'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import fastifyCache from '../../plugin/index.js'
import { BUS_ACK_TIMEOUT_MS, InvalidationBus } from '../../plugin/bus.js'
import { LocalTier } from '../../plugin/l1.js'
import { build, logCollector } from '../helpers/app.js'
import { redisForFile, sleep } from '../helpers/redis.js'

// Its own server: one test drops every pub/sub connection on it (CLIENT KILL TYPE pubsub).
const { redis, client } = await redisForFile(t, { own: true })

t.test('L1 serves hot pages from memory, no longer than its ttl', async (t) => {
  const app = await build(t, { redis, cache: { l1: { ttl: 0.3 } } })
  let calls = 0
  app.get('/hot', { config: { cache: { ttl: 60 } } }, async () => `v${++calls}`)
  t.equal((await app.inject('/hot')).headers['x-cache'], 'MISS')
  // Remove the Redis copy behind the plugin's back: only L1 can still answer.
  await client.del(app.cache.prefix + 'view//hot')
  const hit = await app.inject('/hot')
  t.equal(hit.headers['x-cache'], 'HIT')
  t.equal(hit.body, 'v1')
  t.equal(app.cache.stats().l1Hits, 1)
  await sleep(400)
  const after = await app.inject('/hot')
  t.equal(after.headers['x-cache'], 'MISS', 'after the L1 ttl the store is asked again')
  t.equal(after.body, 'v2')
})

t.test('L1 holds a page\'s own bytes: a body that is a view of a larger buffer is copied, once', async (t) => {
  const tier = new LocalTier({ maxBytes: 1_000_000, ttlMs: 60_000 })
  // ioredis hands back views of its socket reads, which hold other replies too.
  const socketRead = Buffer.alloc(65_536, 'x')
  socketRead.write('<p>page</p>', 1_000)
  const view = socketRead.subarray(1_000, 1_011)
  const entry = { status: 200, headers: {}, body: view, createdAt: Date.now(), ttlMs: 60_000, etag: '"e"', staleMs: 0, tags: [] }
  tier.set('view//\n', entry, 1)
  const held = tier.get('view//\n')?.entry
  t.equal(held?.body.toString(), '<p>page</p>')
  t.equal(held?.body.buffer.byteLength, 11, 'a buffer of its own, not the 64 KB read it came in')
  t.equal(held?.etag, '"e"', 'the rest of the entry is kept')
  // Requests that shared one lookup each hand L1 the same entry: it is copied once.
  tier.set('view//\n', entry, 1)
  t.equal(tier.get('view//\n')?.entry, held, 'the same copy')
  const own = Buffer.allocUnsafeSlow(11)
  view.copy(own)
  tier.set('view//about\n', { ...entry, body: own }, 1)
  t.equal(tier.get('view//about\n')?.entry.body, own, 'a body that owns its buffer is kept as it is')
})

t.test('L1 fills from a store hit, and stays within its byte bound', async (t) => {
  const prefix = `${redis.prefix}l1-fill:`
  // Stored as sent: compressed, ten such pages would fit in far less than the bound (the next test).
  const writer = await build(t, { redis, cache: { prefix, compressAbove: false } })
  const reader = await build(t, { redis, cache: { prefix, compressAbove: false, l1: { maxBytes: 50_000 } } })
  for (const app of [writer, reader]) app.get('/page/:n', { config: { cache: true } }, async () => 'x'.repeat(10_000))
  for (let n = 0; n < 10; n++) await writer.inject(`/page/${n}`)
  for (let n = 0; n < 10; n++) t.equal((await reader.inject(`/page/${n}`)).headers['x-cache'], 'HIT')
  const before = reader.cache.stats().l1Hits
  for (let n = 9; n >= 0; n--) await reader.inject(`/page/${n}`) // the most recent first: LRU keeps those
  const fromL1 = reader.cache.stats().l1Hits - before
  t.ok(fromL1 > 0 && fromL1 < 10, `some pages from L1, the rest evicted by the byte bound (${fromL1} of 10)`)
})

t.test('L1 holds a page stored compressed at its compressed size, and serves each client its coding', async (t) => {
  const prefix = `${redis.prefix}l1-compressed:`
  const writer = await build(t, { redis, cache: { prefix } })
  const reader = await build(t, { redis, cache: { prefix, l1: { maxBytes: 50_000 } } })
  for (const app of [writer, reader]) app.get('/page/:n', { config: { cache: true } }, async () => 'x'.repeat(10_000))
  for (let n = 0; n < 10; n++) await writer.inject(`/page/${n}`)
  // Clients that accept a coding: L1 holds the codings alone (an identity client's bytes would be kept too, and count).
  for (let n = 0; n < 10; n++) await reader.inject({ url: `/page/${n}`, headers: { 'accept-encoding': 'br, gzip' } })
  const before = reader.cache.stats().l1Hits
  for (let n = 9; n >= 0; n--) {
    const response = await reader.inject({ url: `/page/${n}`, headers: { 'accept-encoding': n % 2 === 0 ? 'br' : 'gzip' } })
    t.equal(response.headers['content-encoding'], n % 2 === 0 ? 'br' : 'gzip')
  }
  t.equal(reader.cache.stats().l1Hits - before, 10, 'all ten pages from L1: compressed, they fit in the bound')
  const identity = await reader.inject('/page/3')
  t.equal(identity.headers['content-encoding'], undefined)
  t.equal(identity.body, 'x'.repeat(10_000), 'a client without Accept-Encoding gets the identity bytes')
})

t.test('two instances with L1 and the bus: an edit on A is never served stale by B once delivered', async (t) => {
  const prefix = `${redis.prefix}bus:`
  const a = await build(t, { redis, cache: { prefix, l1: true, bus: true } })
  const b = await build(t, { redis, cache: { prefix, l1: true, bus: true } })
  let content = 0
  for (const app of [a, b]) {
    app.get('/', { config: { cache: { ttl: 600 } } }, async () => `index v${content}`)
    await app.ready()
  }
  const delays: number[] = []
  for (let round = 1; round <= 30; round++) {
    await b.inject('/')
    await sleep(5) // L1 takes a page once the store has accepted it
    t.equal((await b.inject('/')).body, `index v${content}`)
    content = round
    await a.cache.delete('view//')
    let seen = ''
    for (let attempt = 0; attempt < 200; attempt++) {
      if ((b.cache.stats().bus?.received ?? 0) >= round) break
      await sleep(1)
    }
    delays.push(b.cache.stats().bus?.lastDelayMs ?? -1)
    seen = (await b.inject('/')).body
    if (seen !== `index v${content}`) t.fail(`round ${round}: B served ${seen} after the invalidation arrived`)
  }
  t.equal(b.cache.stats().bus?.received, 30, 'every invalidation was delivered')
  t.ok(b.cache.stats().l1Hits >= 30, 'B was serving from L1 between edits')
  delays.sort((x, y) => x - y)
  t.comment(`bus delay over 30 invalidations: p50 ${delays[15]} ms, max ${delays[29]} ms`)
  t.ok(delays.every((delay) => delay >= 0))
})

t.test('invalidateTags and clear travel over the bus too', async (t) => {
  const prefix = `${redis.prefix}bus-tags:`
  const a = await build(t, { redis, cache: { prefix, l1: true, bus: true } })
  const b = await build(t, { redis, cache: { prefix, l1: true, bus: true } })
  let version = 1
  for (const app of [a, b]) {
    app.get('/post/:id', { config: { cache: { tags: (request) => [`post:${(request.params as { id: string }).id}`] } } },
      async (request) => `post ${(request.params as { id: string }).id} v${version}`)
    await app.ready()
  }
  await b.inject('/post/1')
  await b.inject('/post/2')
  t.equal((await b.inject('/post/1')).headers['x-cache'], 'HIT')
  version = 2
  await a.cache.invalidateTags(['post:1'])
  await waitFor(() => (b.cache.stats().bus?.received ?? 0) >= 1)
  t.equal((await b.inject('/post/1')).body, 'post 1 v2')
  t.equal((await b.inject('/post/2')).body, 'post 2 v1', 'untagged pages stay')
  await a.cache.clear()
  await waitFor(() => (b.cache.stats().bus?.received ?? 0) >= 2)
  t.equal((await b.inject('/post/2')).body, 'post 2 v2')
})

async function waitFor (condition: () => boolean): Promise<void> {
  for (let attempt = 0; attempt < 500 && !condition(); attempt++) await sleep(2)
}

t.test('while the bus is down, L1 is empty and off; it comes back with the bus', async (t) => {
  const app = await build(t, { redis, cache: { l1: true, bus: true } })
  app.get('/b', { config: { cache: { ttl: 60 } } }, async () => 'page')
  await app.ready()
  await app.inject('/b')
  await sleep(20) // L1 takes a page once the store has accepted it
  await app.inject('/b')
  t.equal(app.cache.stats().l1Hits, 1)
  t.equal(app.cache.stats().bus?.connected, true)
  const admin = new Redis(redis.url)
  t.teardown(async () => await admin.quit())
  await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub')
  await waitFor(() => app.cache.stats().bus?.connected === false)
  const hitsBefore = app.cache.stats().l1Hits
  const down = await app.inject('/b')
  t.equal(down.headers['x-cache'], 'HIT', 'still served, from Redis')
  t.equal(app.cache.stats().l1Hits, hitsBefore, 'not from L1')
  for (let attempt = 0; attempt < 300 && app.cache.stats().bus?.connected !== true; attempt++) await sleep(20)
  t.equal(app.cache.stats().bus?.connected, true, 'the bus reconnected')
  await app.inject('/b')
  await app.inject('/b')
  t.ok(app.cache.stats().l1Hits > hitsBefore, 'L1 serves again')
})

t.test('bad l1 and bus options are coded errors', async (t) => {
  for (const [option, input] of [
    ['l1', { l1: 5 }], ['l1.maxBytes', { l1: { maxBytes: -1 } }], ['l1.ttl', { l1: { ttl: 0 } }],
    ['l1.size', { l1: { size: 1 } }], ['bus', { bus: 'yes' }], ['bus', { store: 'memory', bus: true }], ['bus', { bus: true }]
  ] as const) {
    const app = Fastify()
    t.teardown(async () => await app.close())
    await t.rejects(async () => await app.register(fastifyCache, input as never), { code: 'FST_CACHE_INVALID_OPTION', option })
  }
})

/** The bus channel of an app (plugin/index.ts: the prefix, then '__bus'). */
const channelOf = (prefix: string): string => prefix + '__bus'

t.test('a bus message naming only tags drops the pages carrying them from L1, and only those', async (t) => {
  const app = await build(t, { redis, cache: { l1: true, bus: true } })
  app.get('/tagged', { config: { cache: { ttl: 60, tags: ['news'] } } }, async () => 'tagged')
  app.get('/plain', { config: { cache: { ttl: 60 } } }, async () => 'plain')
  await app.ready()
  for (const url of ['/tagged', '/plain']) await app.inject(url)
  await sleep(20) // L1 takes a page once the store has accepted it
  for (const url of ['/tagged', '/plain']) await app.inject(url)
  t.equal(app.cache.stats().l1Hits, 2, 'both pages in L1')
  // From another publisher, which names the tag alone (no keys).
  await client.publish(channelOf(app.cache.prefix), JSON.stringify({ from: 'elsewhere', at: Date.now(), tags: ['news'] }))
  await waitFor(() => (app.cache.stats().bus?.received ?? 0) >= 1)
  const before = app.cache.stats().l1Hits
  const tagged = await app.inject('/tagged')
  t.same([tagged.headers['x-cache'], tagged.body], ['HIT', 'tagged'], 'the tagged page is still served, from Redis')
  t.equal(app.cache.stats().l1Hits, before, 'not from L1')
  t.equal((await app.inject('/plain')).headers['x-cache'], 'HIT')
  t.equal(app.cache.stats().l1Hits, before + 1, 'the untagged page is still in L1')
})

t.test('an unreadable bus message is logged and ignored; the bus goes on', async (t) => {
  const { lines, logger } = logCollector('warn')
  const app = await build(t, {
    redis, cache: { l1: true, bus: true }, logger
  })
  await app.ready()
  const channel = channelOf(app.cache.prefix)
  await client.publish(channel, 'not json {')
  await client.publish(channel, JSON.stringify({ from: 'elsewhere', at: Date.now(), keys: ['k'] }))
  await waitFor(() => (app.cache.stats().bus?.received ?? 0) >= 1)
  t.equal(app.cache.stats().bus?.received, 1, 'only the readable message counts')
  t.same(lines.filter((line) => line.msg.includes('bus message')).map((line) => [line.level, line.msg]),
    [[40, 'fastify-cache: unreadable bus message ignored']])
})

t.test('a bus whose own subscriber is not connected counts every listener as another instance, and waits for them', async (t) => {
  const channel = `${redis.prefix}bus-unit:__bus`
  const log = Fastify({ logger: false }).log
  const otherClient = new Redis(redis.url)
  const other = new InvalidationBus(otherClient, channel, log, () => {}, () => {})
  await other.start()
  // lazyConnect: its subscriber (a duplicate of the publisher) never connects, as nothing asks it to subscribe.
  const publisher = new Redis(redis.url, { lazyConnect: true })
  const bus = new InvalidationBus(publisher, channel, log, () => {}, () => {})
  t.teardown(async () => {
    await bus.close()
    await other.close()
    publisher.disconnect()
    otherClient.disconnect()
  })
  t.equal(bus.stats.connected, false)
  const started = Date.now()
  await bus.publish({ keys: ['k'] })
  t.equal(other.stats.received, 1, 'the other instance applied the purge')
  // Its confirmation cannot reach a subscriber that is down: the purge waits it out rather than return at once.
  t.equal(bus.stats.ackTimeouts, 1)
  t.ok(Date.now() - started >= BUS_ACK_TIMEOUT_MS - 10, 'after BUS_ACK_TIMEOUT_MS')
})
