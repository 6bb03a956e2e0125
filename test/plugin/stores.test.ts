import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { MemoryStore, RedisStore } from '../../plugin/index.js'
import { runStoreContract } from '../helpers/store-contract.js'
import { redisForFile, sleep } from '../helpers/redis.js'
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
  const reads = await Promise.all(keys.map(async (key, i) => await store.getField(key, 'v', lock(i))))
  t.ok(reads.every((read) => read.value === undefined && read.lock === 'taken'), 'each missing variant is locked for its caller')
  const writes = await Promise.all(keys.map(async (key, i) =>
    await store.setField(key, 'v', Buffer.from(`page ${i}`), 5_000, 10, reads[i]?.version, undefined, `t${i}`)))
  t.ok(writes.every((written) => written), 'every write lands')
  // A command sent at once goes after what is queued: a write not awaited is seen by the read that follows it.
  const pending = store.setField(keys[0]!, 'w', Buffer.from('later'), 5_000, 10)
  t.equal((await store.getField(keys[0]!, 'w')).value?.toString(), 'later')
  t.equal(await pending, true)
  const again = await Promise.all(keys.map(async (key, i) => await store.getField(key, 'v', lock(i + 100))))
  t.same(again.map((read) => read.value?.toString()), keys.map((_key, i) => `page ${i}`), 'each caller gets its own key\'s page')
  t.ok(again.every((read) => read.lock === 'free'), 'and the writes released the locks')
  await stop()
  t.same(sent.filter((name) => name.startsWith('eval') || name === 'hmget'), ['eval', 'eval', 'evalsha', 'hmget', 'evalsha'],
    '20 lookups in one call, 20 writes in another; the queued write before the plain read; 20 lookups in one call')
})

t.test('RedisStore: a batch carries at most 64 lookups, and at most 1 MB of pages', async (t) => {
  const { store, sent, stop } = await watchedStore(t)
  const keys = Array.from({ length: 150 }, (_, i) => `${redis.prefix}cap-${i}`)
  const reads = await Promise.all(keys.map(async (key) => await store.getField(key, 'v', { token: 't', ttlMs: 5_000 })))
  t.equal(reads.length, 150)
  const big = Buffer.alloc(600 * 1024, 'x')
  const written = await Promise.all([0, 1, 2].map(async (i) => await store.setField(keys[i]!, 'v', big, 5_000, 10)))
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
  t.equal(await new RedisStore(master).setField(key, 'v', Buffer.from('stored page'), 60_000, 10), true)
  for (let i = 0; i < 100 && await replica.exists(key) === 0; i++) await sleep(20)
  const store = new RedisStore(replica)
  // The lookup script may write a lock, so the replica refuses it (READONLY): the store reads without a lock.
  const [hit, miss] = await Promise.all([
    store.getField(key, 'v', { token: 'a', ttlMs: 5_000 }),
    store.getField(key, 'missing', { token: 'b', ttlMs: 5_000 })
  ])
  t.equal(hit.value?.toString(), 'stored page', 'a stored page is still served')
  t.equal(hit.lock, 'free')
  t.equal(miss.value, undefined)
  t.equal(miss.lock, 'free', 'a missing page is computed without a lock')
  t.same(await replica.hkeys(key), ['v'], 'nothing was written on the replica')
  await t.rejects(store.setField(key, 'w', Buffer.from('x'), 60_000, 10), /READONLY/, 'writes are refused, and say so')
})

t.test('RedisStore writes keys with a TTL', async (t) => {
  const store = new RedisStore(client)
  await store.set(redis.prefix + 'ttl', Buffer.from('x'), 5_000)
  await store.setField(redis.prefix + 'ttl-f', '', Buffer.from('x'), 5_000, 10)
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
  for (let i = 0; i < 50; i++) await store.setField('fields', `v${i}`, Buffer.alloc(500, i), 60_000, 1_000)
  t.ok(store.calculatedSize <= 10_000, `field growth is bounded too (${store.calculatedSize} bytes)`)
})

t.test('RedisStore.delete on many keys in one call', async (t) => {
  const store = new RedisStore(client)
  const keys = Array.from({ length: 20 }, (_, i) => `${redis.prefix}many-${i}`)
  for (const key of keys) await store.set(key, Buffer.from('x'), 10_000)
  t.equal(await store.delete(keys, 0), 20)
})
