import t, { type Test } from 'tap'
import { Cluster, Redis } from 'ioredis'
import { MemoryStore, RedisStore, type PageStore } from '../../plugin/index.js'
import { startCluster } from '../helpers/cluster.js'
import { runStoreContract } from '../helpers/store-contract.js'
import { freePort, redisForFile, sleep } from '../helpers/redis.js'
import { startSentinel } from '../helpers/sentinel.js'

const { redis, client } = await redisForFile(t)

runStoreContract(t, 'MemoryStore', async () => ({ store: new MemoryStore({ maxBytes: 1024 * 1024 }), prefix: 'mem:' }))
runStoreContract(t, 'RedisStore', async () => ({ store: new RedisStore(client), prefix: redis.prefix }))
// The plugin's own client auto-pipelines: the scripts must run through ioredis's auto-pipeline as well.
runStoreContract(t, 'RedisStore, auto-pipelined', async (t) => {
  const pipelined = new Redis(redis.url, { enableAutoPipelining: true })
  t.teardown(() => pipelined.disconnect())
  return { store: new RedisStore(pipelined), prefix: redis.prefix + 'auto:' }
})

/**
 * A RedisStore on a client of its own, and the commands that client sends, in order, as MONITOR sees them: not those
 * its scripts run (source 'lua'), nor other clients' on a shared server. `stop` waits for MONITOR to catch up, then
 * ends it.
 */
async function watchedStore (t: Test): Promise<{ store: RedisStore, sent: string[], stop: () => Promise<void> }> {
  const counted = new Redis(redis.url)
  const monitor = new Redis(redis.url)
  t.teardown(() => { counted.disconnect(); monitor.disconnect() })
  await counted.ping()
  const source = `127.0.0.1:${(counted as unknown as { stream: { localPort: number } }).stream.localPort}`
  const sent: string[] = []
  const watching = await monitor.monitor()
  watching.on('monitor', (_time: string, args: string[], from: string) => {
    if (from === source) sent.push(String(args[0]).toLowerCase())
  })
  return {
    store: new RedisStore(counted),
    sent,
    stop: async () => {
      await new Promise((resolve) => setTimeout(resolve, 100))
      watching.disconnect()
    }
  }
}

t.test('RedisStore sends a script in full once, then by its SHA, and again after Redis forgot it', async (t) => {
  const { store, sent, stop } = await watchedStore(t)
  for (let i = 0; i < 3; i++) await store.has(redis.prefix + 'sha')
  await client.script('FLUSH')
  t.equal(await store.has(redis.prefix + 'sha'), false, 'NOSCRIPT: sent again in full, and answered')
  await store.has(redis.prefix + 'sha')
  await stop()
  t.same(sent.filter((name) => name.startsWith('eval')), ['eval', 'evalsha', 'evalsha', 'evalsha', 'eval', 'evalsha'])
})

t.test('RedisStore: lookups and writes issued together share one script call, and keep their order', async (t) => {
  const { store, sent, stop } = await watchedStore(t)
  const keys = Array.from({ length: 20 }, (_, i) => `${redis.prefix}batch-${i}`)
  const lock = (i: number): { token: string, ttlMs: number } => ({ token: `t${i}`, ttlMs: 5_000 })
  const reads = await Promise.all(keys.map(async (key, i) => await store.getField(key, 'v', { lock: lock(i) })))
  t.ok(reads.every((read) => read.value === undefined && read.lock === 'taken'), 'each missing variant is locked for its caller')
  const writes = await Promise.all(keys.map(async (key, i) =>
    await store.setField(key, 'v', Buffer.from(`page ${i}`), { ttlMs: 5_000, maxFields: 10, ifVersion: reads[i]?.version, unlock: `t${i}` })))
  t.ok(writes.every((written) => written), 'every write lands')
  // A command sent at once goes after what is queued: a write not awaited is seen by the read that follows it.
  const pending = store.setField(keys[0]!, 'w', Buffer.from('later'), { ttlMs: 5_000, maxFields: 10 })
  t.equal((await store.getField(keys[0]!, 'w')).value?.toString(), 'later')
  t.equal(await pending, true)
  const again = await Promise.all(keys.map(async (key, i) => await store.getField(key, 'v', { lock: lock(i + 100) })))
  t.same(again.map((read) => read.value?.toString()), keys.map((_key, i) => `page ${i}`), 'each caller gets its own key\'s page')
  t.ok(again.every((read) => read.lock === 'free'), 'and the writes released the locks')
  await stop()
  t.same(sent.filter((name) => name.startsWith('eval') || name === 'hmget'), ['eval', 'eval', 'evalsha', 'hmget', 'evalsha'],
    '20 lookups in one call, 20 writes in another; the queued write before the plain read; 20 lookups in one call')
})

t.test('RedisStore: a batch carries at most 64 lookups, and at most 1 MB of pages', async (t) => {
  const { store, sent, stop } = await watchedStore(t)
  const keys = Array.from({ length: 150 }, (_, i) => `${redis.prefix}cap-${i}`)
  const reads = await Promise.all(keys.map(async (key) => await store.getField(key, 'v', { lock: { token: 't', ttlMs: 5_000 } })))
  t.equal(reads.length, 150)
  const big = Buffer.alloc(600 * 1024, 'x')
  const written = await Promise.all([0, 1, 2].map(async (i) => await store.setField(keys[i]!, 'v', big, { ttlMs: 5_000, maxFields: 10 })))
  t.same(written, [true, true, true])
  await stop()
  t.equal(sent.filter((name) => name.startsWith('eval')).length, 3 + 3, '150 lookups in 3 calls; 3 pages of 600 KB in 3')
})

t.test('RedisStore on a read-only replica: lookups that cannot lock still read stored pages', async (t) => {
  const pair = await startSentinel(t)
  const master = pair.nodeClient(pair.master.port)
  const replica = pair.nodeClient(pair.replica.port)
  t.teardown(() => { master.disconnect(); replica.disconnect() })
  const key = 'replica-page'
  t.equal(await new RedisStore(master).setField(key, 'v', Buffer.from('stored page'), { ttlMs: 60_000, maxFields: 10 }), true)
  for (let i = 0; i < 100 && await replica.exists(key) === 0; i++) await sleep(20)
  const store = new RedisStore(replica)
  // The lookup script may write a lock, so the replica refuses it (READONLY): the store reads without a lock.
  const [hit, miss] = await Promise.all([
    store.getField(key, 'v', { lock: { token: 'a', ttlMs: 5_000 } }),
    store.getField(key, 'missing', { lock: { token: 'b', ttlMs: 5_000 } })
  ])
  t.equal(hit.value?.toString(), 'stored page', 'a stored page is still served')
  t.equal(hit.lock, 'free')
  t.equal(miss.value, undefined)
  t.equal(miss.lock, 'free', 'a missing page is computed without a lock')
  t.same((await replica.hkeys(key)).sort(), [' w v', 'v'], 'nothing was written on the replica (the variant and when it was written)')
  await t.rejects(store.setField(key, 'w', Buffer.from('x'), { ttlMs: 60_000, maxFields: 10 }), /READONLY/, 'writes are refused, and say so')
})

t.test('RedisStore writes keys with a TTL', async (t) => {
  const store = new RedisStore(client)
  await store.set(redis.prefix + 'ttl', Buffer.from('x'), 5_000)
  await store.setField(redis.prefix + 'ttl-f', '', Buffer.from('x'), { ttlMs: 5_000, maxFields: 10 })
  for (const key of ['ttl', 'ttl-f']) {
    const pttl = await client.pttl(redis.prefix + key)
    t.ok(pttl > 0 && pttl <= 5_000, `${key} expires (${pttl}ms)`)
  }
})

t.test('MemoryStore stays within its byte bound, evicting the least recently used', async (t) => {
  const store = new MemoryStore({ maxBytes: 10_000 })
  for (let i = 0; i < 50; i++) await store.set(`k${i}`, Buffer.alloc(1_000, i), 60_000)
  t.ok(store.calculatedSize <= 10_000, `held ${store.calculatedSize} bytes`)
  t.equal(await store.get('k0'), undefined, 'the oldest entry was evicted')
  t.ok(await store.get('k49'), 'the newest entry is kept')
  for (let i = 0; i < 50; i++) await store.setField('fields', `v${i}`, Buffer.alloc(500, i), { ttlMs: 60_000, maxFields: 1_000 })
  t.ok(store.calculatedSize <= 10_000, `field growth is bounded too (${store.calculatedSize} bytes)`)
})

t.test('RedisStore.delete on many keys in one call', async (t) => {
  const store = new RedisStore(client)
  const keys = Array.from({ length: 20 }, (_, i) => `${redis.prefix}many-${i}`)
  for (const key of keys) await store.set(key, Buffer.from('x'), 10_000)
  t.equal(await store.delete(keys, { tombstoneMs: 0 }), 20)
})

/** Both stores, for behaviours they must share; `exists` looks behind the store's back. */
const bothStores: Array<[string, () => { store: PageStore, prefix: string, exists: (key: string) => Promise<boolean> }]> = [
  ['MemoryStore', () => {
    const store = new MemoryStore({ maxBytes: 1024 * 1024 })
    // An empty item the store kept still takes its share of the byte bound.
    return { store, prefix: 'mem-parity:', exists: async () => store.calculatedSize > 0 }
  }],
  ['RedisStore', () => ({
    store: new RedisStore(client), prefix: redis.prefix + 'parity:', exists: async (key) => await client.exists(key) === 1
  })]
]

for (const [name, make] of bothStores) {
  t.test(`${name}: a waiter's lookup (takeOverOnly) takes a lock only from a holder that died`, async (t) => {
    const { store, prefix } = make()
    const key = prefix + 'take-over'
    const waiter = (token: string): { token: string, ttlMs: number, takeOverOnly: true } => ({ token, ttlMs: 5_000, takeOverOnly: true })
    await store.setField(key, 'other', Buffer.from('another variant keeps the key alive'), { ttlMs: 60_000, maxFields: 10 })
    const released = await store.getField(key, 'v', { lock: waiter('w1') })
    t.same([released.lock, released.value], ['free', undefined], 'missing with no lock: released by a holder that stored nothing')
    t.equal(await store.lockField(key, 'v', { token: 'holder', ttlMs: 60 }), true, 'and the waiter locked nothing')
    t.equal((await store.getField(key, 'v', { lock: waiter('w2') })).lock, 'held', 'a live lock is waited for')
    await sleep(100)
    t.equal((await store.getField(key, 'v', { lock: waiter('w3') })).lock, 'taken', 'an expired one is taken over')
    t.equal(await store.unlockField(key, 'v', 'holder'), false, 'the dead holder no longer owns it')
    t.equal(await store.unlockField(key, 'v', 'w3'), true, 'the waiter does')
  })

  t.test(`${name}: a lock outlives the key it was taken on`, async (t) => {
    const { store, prefix } = make()
    const key = prefix + 'short-key'
    await store.setField(key, 'a', Buffer.from('page'), { ttlMs: 50, maxFields: 10 })
    t.equal(await store.lockField(key, 'b', { token: 'holder', ttlMs: 5_000 }), true)
    await sleep(120)
    t.equal(await store.lockField(key, 'b', { token: 'other', ttlMs: 5_000 }), false, 'still held after the 50 ms the key was written for')
    t.equal(await store.unlockField(key, 'b', 'holder'), true)
  })

  t.test(`${name}: deleting the last variant of a key`, async (t) => {
    const { store, prefix, exists } = make()
    const plain = prefix + 'last-plain'
    await store.setField(plain, 'a', Buffer.from('page'), { ttlMs: 60_000, maxFields: 10 })
    t.equal(await store.deleteField(plain, 'a'), true)
    t.equal(await exists(plain), false, 'a key never deleted and not locked goes with it')

    const purged = prefix + 'last-purged'
    await store.delete([purged], { tombstoneMs: 60_000 })
    t.equal((await store.getField(purged, 'a')).version, 1)
    t.equal(await store.setField(purged, 'a', Buffer.from('page'), { ttlMs: 60_000, maxFields: 10, ifVersion: 1 }), true)
    t.equal(await store.deleteField(purged, 'a'), true)
    t.equal((await store.getField(purged, 'a')).version, 1, 'a deleted key keeps its version')
    t.equal(await store.setField(purged, 'a', Buffer.from('older'), { ttlMs: 60_000, maxFields: 10, ifVersion: 0 }), false, 'so a write read before the delete is still refused')

    const locked = prefix + 'last-locked'
    await store.setField(locked, 'a', Buffer.from('page'), { ttlMs: 60_000, maxFields: 10 })
    t.equal(await store.lockField(locked, 'b', { token: 'holder', ttlMs: 5_000 }), true)
    t.equal(await store.deleteField(locked, 'a'), true)
    t.equal(await store.lockField(locked, 'b', { token: 'other', ttlMs: 5_000 }), false, 'a lock on another variant stays')
    t.equal(await store.unlockField(locked, 'b', 'holder'), true)
  })
}

t.test('RedisStore: a batch answered with a reply that is not its script\'s fails, rather than hand out wrong pages', async (t) => {
  // A connection that mixes up replies, for real: Redis answers neither CLIENT REPLY SKIP nor the command after it, so
  // from then on ioredis hands each command the reply of one sent later.
  const mixed = new Redis(redis.url)
  t.teardown(() => mixed.disconnect())
  await mixed.ping()
  const store = new RedisStore(mixed)
  const key = redis.prefix + 'mixed-up'
  const answered: Array<Promise<unknown>> = [mixed.call('CLIENT', 'REPLY', 'SKIP'), mixed.ping('skipped')]
  for (const pending of answered) pending.catch(() => {}) // they get what is left, or nothing, when it disconnects
  const lookup = store.getField(key, 'v', { lock: { token: 'tok', ttlMs: 5_000 } })
  await new Promise((resolve) => setImmediate(resolve)) // the batch leaves at the end of this turn of the loop
  // Two replies are missing, so the batch gets the reply to the second command sent after it.
  mixed.ping('handed to the first ping').catch(() => {})
  mixed.ping('handed to the batch').catch(() => {})
  await t.rejects(lookup, { message: 'unexpected reply to a batch of 1 store calls' })
})

t.test('RedisStore: a version field that is not a number is foreign data, read as a miss and replaced', async (t) => {
  const store = new RedisStore(client)
  const key = redis.prefix + 'bad-version'
  await client.hset(key, ' version', 'not a number', 'v', 'not ours')
  t.same(await store.getField(key, 'v'), { value: undefined, version: 0, foreign: true })
  t.equal(await store.setField(key, 'v', Buffer.from('ours'), { ttlMs: 60_000, maxFields: 10 }), true)
  const read = await store.getField(key, 'v')
  t.same([read.value?.toString(), read.version, read.foreign], ['ours', 0, undefined])
  t.same((await client.hkeys(key)).sort(), [' w v', 'v'], 'the foreign bookkeeping is gone (left: the variant and when it was written)')
})

t.test('RedisStore on a Cluster client not yet connected (lazyConnect) that cannot reach a node: list() gives up', async (t) => {
  const cluster = new Cluster([{ host: '127.0.0.1', port: await freePort() }], { lazyConnect: true, clusterRetryStrategy: () => null })
  cluster.on('error', () => {})
  t.teardown(() => cluster.disconnect())
  t.equal(cluster.status, 'wait')
  const started = Date.now()
  await t.rejects(new RedisStore(cluster).list('lazy:', 10), /the Redis Cluster client is not ready/)
  t.ok(Date.now() - started >= 4_900, 'after waiting for the slot map (5 s)')
})

t.test('RedisStore on a Cluster: clear() connects a lazy client, and rejects when a master refuses the UNLINKs', async (t) => {
  const cluster = await startCluster(t)
  const prefix = 'refused:'
  const seeder = new RedisStore(cluster.createClient())
  for (let i = 0; i < 30; i++) await seeder.set(`${prefix}${i}`, Buffer.from('x'), 60_000)
  const lazy = cluster.createClient({ lazyConnect: true })
  t.equal(lazy.status, 'wait')
  const store = new RedisStore(lazy)
  const ports = cluster.nodes.map(({ port }) => port)
  const holders = await Promise.all(ports.map(async (port) => (await cluster.nodeClient(port).keys(`${prefix}*`)).length))
  const victim = ports[holders.findIndex((count) => count > 0)] as number
  const admin = cluster.nodeClient(victim)
  // No replica can acknowledge: that master refuses every write (NOREPLICAS), UNLINK included, while SCAN still works.
  await admin.config('SET', 'min-replicas-to-write', '1')
  await t.rejects(store.clear(prefix), /NOREPLICAS/, 'the refusal is not swallowed')
  t.ok((await admin.keys(`${prefix}*`)).length > 0, "the refusing master's keys are still there")
  await admin.config('SET', 'min-replicas-to-write', '0')
  const left = (await Promise.all(ports.map(async (port) => (await cluster.nodeClient(port).keys(`${prefix}*`)).length)))
    .reduce((sum, count) => sum + count, 0)
  t.equal(await store.clear(prefix), left, 'once it accepts writes, clear() removes what was left')
  t.equal(await store.has(`${prefix}0`), false)
})
