import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { LocalTier } from '../../plugin/l1.js'
import { RedisStore } from '../../plugin/stores/redis.js'
import { valueId } from '../../plugin/keyspace.js'
import { build } from '../helpers/app.js'
import { redisForFile } from '../helpers/redis.js'

// Two instances on one Redis, each with L1 and the bus, as in tiers.test.ts. A purge or a write resolves once every
// other instance has confirmed it dropped its copies (the bus waits for their acks), so each step below is ordered by
// the promises it awaits.
const { redis, client } = await redisForFile(t)

async function pair (t: Test, name: string): Promise<{ a: FastifyInstance, b: FastifyInstance, prefix: string }> {
  const prefix = `${redis.prefix}${name}:`
  const a = await build(t, { redis, cache: { prefix, l1: true, bus: true } })
  const b = await build(t, { redis, cache: { prefix, l1: true, bus: true } })
  await a.ready()
  await b.ready()
  return { a, b, prefix }
}

t.test('get serves a value from L1 after one store read, parsed afresh for each caller', async (t) => {
  const { a, prefix } = await pair(t, 'get')
  await a.cache.set('settings', { theme: 'dark' })
  t.same(await a.cache.get('settings'), { theme: 'dark' })
  t.equal(a.cache.stats().l1Hits, 0, 'the first read goes to the store')
  await client.del(prefix + 'settings') // behind the plugin's back: only L1 can still answer
  const held = await a.cache.get<{ theme: string }>('settings')
  t.same(held, { theme: 'dark' })
  t.equal(a.cache.stats().l1Hits, 1)
  if (held !== undefined) held.theme = 'changed by the caller'
  t.same(await a.cache.get('settings'), { theme: 'dark' }, 'a caller cannot change what L1 holds')
  t.same(await a.cache.getMany(['settings', 'absent']), [{ theme: 'dark' }, undefined], 'getMany reads through L1 too')
})

t.test('a set, add or setMany on one instance drops the value from every L1', async (t) => {
  const { a, b } = await pair(t, 'set')
  await a.cache.set('k', 1)
  t.equal(await b.cache.get('k'), 1)
  t.equal(await b.cache.get('k'), 1)
  t.equal(b.cache.stats().l1Hits, 1, 'b holds it in L1')
  await a.cache.set('k', 2)
  t.equal(await b.cache.get('k'), 2, 'the new value, not b\'s copy')
  t.equal(await b.cache.get('k'), 2)
  await a.cache.delete('k')
  t.equal(await a.cache.add('k', 3), true)
  t.equal(await b.cache.get('k'), 3)
  await a.cache.setMany({ k: 4, other: 5 })
  t.same(await b.cache.getMany(['k', 'other']), [4, 5])
})

t.test('delete, deleteMany, invalidateTags and clear on one instance drop the value from every L1', async (t) => {
  const { a, b } = await pair(t, 'purge')
  const holdInB = async (key: string): Promise<void> => {
    await b.cache.get(key)
    await b.cache.get(key)
  }
  await a.cache.setMany({ one: 1, two: 2, three: 3 })
  await a.cache.set('tagged', 't', { tags: ['news'] })
  for (const key of ['one', 'two', 'three', 'tagged']) await holdInB(key)
  t.equal(b.cache.stats().l1Hits, 4)
  await a.cache.delete('one')
  t.equal(await b.cache.get('one'), undefined)
  await a.cache.deleteMany(['two'])
  t.equal(await b.cache.get('two'), undefined)
  await a.cache.invalidateTags(['news'])
  t.equal(await b.cache.get('tagged'), undefined)
  t.equal(await b.cache.get('three'), 3, 'untouched values stay')
  await a.cache.clear()
  t.equal(await b.cache.get('three'), undefined)
})

t.test('wrap and memoize values come from L1; deleteMemoized on one instance drops them everywhere', async (t) => {
  const { a, b, prefix } = await pair(t, 'wrap')
  await a.cache.set('menu', ['home'])
  let wraps = 0
  const compute = (): string[] => { wraps++; return ['computed'] }
  t.same(await b.cache.wrap('menu', compute), ['home'], 'from the store')
  await client.del(prefix + 'menu')
  t.same(await b.cache.wrap('menu', compute), ['home'], 'from L1')
  t.equal(wraps, 0)

  let renders = 0
  const render = async (id: number): Promise<string> => `post ${id} render ${++renders}`
  const onA = a.cache.memoize(render, { name: 'render' })
  const onB = b.cache.memoize(render, { name: 'render' })
  t.equal(await onB(1), 'post 1 render 1', 'computed, and written on b\'s connection')
  t.equal(await onB(1), 'post 1 render 1', 'from the store')
  const before = b.cache.stats().l1Hits
  t.equal(await onB(1), 'post 1 render 1')
  t.equal(b.cache.stats().l1Hits, before + 1, 'from L1')
  await a.cache.deleteMemoized(onA, 1)
  t.equal(await onB(1), 'post 1 render 2', 'b computes again: its copy was dropped')
})

/** A Redis store whose reads, once `hold` is set, return their bytes only when the test releases them. */
class HeldReads extends RedisStore {
  hold: Promise<void> | undefined
  readDone: (() => void) | undefined

  override async get (key: string): Promise<Buffer | undefined> {
    const bytes = await super.get(key)
    if (this.hold !== undefined) {
      this.readDone?.()
      await this.hold
    }
    return bytes
  }
}

t.test('a write or a purge racing a fill never leaves the old value in L1', async (t) => {
  const prefix = `${redis.prefix}race:`
  const a = await build(t, { redis, cache: { prefix, l1: true, bus: true } })
  const bClient = new Redis(redis.url)
  t.teardown(async () => await bClient.quit())
  const store = new HeldReads(bClient)
  const b = await build(t, { cache: { prefix, store, l1: true, bus: true } })
  await a.ready()
  await b.ready()

  const race = async (change: () => Promise<unknown>): Promise<unknown> => {
    let release!: () => void
    store.hold = new Promise((resolve) => { release = resolve })
    const read = new Promise<void>((resolve) => { store.readDone = resolve })
    const reading = b.cache.get('k')
    await read // b has read the old value and not yet kept it
    await change() // resolves once b has applied it
    store.hold = undefined
    release()
    return await reading
  }

  await a.cache.set('k', 'old')
  t.equal(await race(async () => await a.cache.set('k', 'new')), 'old', 'the slow read returns what it read')
  t.equal(await b.cache.get('k'), 'new', 'but did not keep it')
  await a.cache.set('k', 'newer') // drops b's copy, so that b reads the store again
  t.equal(await race(async () => await a.cache.delete('k')), 'newer')
  t.equal(await b.cache.get('k'), undefined, 'a purge during the read: nothing kept')
})

t.test('without L1, every get reads the store', async (t) => {
  const app = await build(t, { redis })
  await app.cache.set('k', 1)
  await app.cache.get('k')
  await client.del(app.cache.prefix + 'k')
  t.equal(await app.cache.get('k'), undefined)
  t.equal(app.cache.stats().l1Hits, 0)
})

t.test('LocalTier keeps values beside pages, by the same rules', async (t) => {
  const tier = new LocalTier({ maxBytes: 10_000, ttlMs: 60_000 })
  const id = valueId('p:k')
  let epoch = tier.epoch
  tier.setValue(id, '"v"', 60_000, epoch)
  t.equal(tier.getValue(id), '"v"')
  t.equal(tier.get('p:k\n'), undefined, 'not a page')
  tier.deleteTags(['news'])
  t.equal(tier.getValue(id), '"v"', 'a value is not dropped by tags (its tags are in the store\'s index)')
  tier.deleteKeys(['p:k'])
  t.equal(tier.getValue(id), undefined, 'dropped with its key')
  epoch = tier.epoch
  tier.deleteKeys(['p:other'])
  tier.setValue(id, '"v"', 60_000, epoch)
  t.equal(tier.getValue(id), undefined, 'a value read before any drop is not kept after it')
  tier.setValue(id, '"v"', 0.5, tier.epoch)
  t.equal(tier.getValue(id), undefined, 'nor one with less than a millisecond to live')
  tier.setValue(id, 'x'.repeat(20_000), 60_000, tier.epoch)
  t.equal(tier.getValue(id), undefined, 'nor one larger than L1')
  tier.setTrusted(false)
  tier.setValue(id, '"v"', 60_000, tier.epoch)
  t.equal(tier.getValue(id), undefined, 'nor anything while the bus is down')
})
