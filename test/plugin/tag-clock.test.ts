import t from 'tap'
import { MemoryStore, toStoreKey, type CacheStore } from '../../plugin/index.js'
import { PAGE_STORE_METHODS, VALUE_STORE_METHODS } from '../../plugin/stores/store.js'
import { build, logCollector } from '../helpers/app.js'
import { sleep } from '../helpers/redis.js'

// Tagged values computed across an invalidation of their tag, on stores without a clock of their own, and a store
// without list(). The memory store and custom stores wrapping it: no Redis is involved.

/** A custom store: the required methods of a MemoryStore, and only those, plus `extra`. */
function customStore (extra: Partial<CacheStore> = {}): { store: CacheStore, inner: MemoryStore } {
  const inner = new MemoryStore({ maxBytes: 1024 * 1024 })
  const store: Record<string, unknown> = { ...extra }
  for (const name of [...VALUE_STORE_METHODS, ...PAGE_STORE_METHODS]) store[name] = (inner[name] as (...args: unknown[]) => unknown).bind(inner)
  return { store: store as unknown as CacheStore, inner }
}

/** A memoized function that waits for `release` on its first call; counts its calls. */
function gated (): { fn: (id: number) => Promise<string>, calls: () => number, entered: Promise<void>, release: () => void } {
  let calls = 0
  let release!: () => void
  let entered!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  const inside = new Promise<void>((resolve) => { entered = resolve })
  return {
    fn: async (id) => {
      calls++
      entered()
      if (calls === 1) await gate
      return `value ${id} #${calls}`
    },
    calls: () => calls,
    entered: inside,
    release
  }
}

t.test('memory store (this process\'s clock): a value computed across an invalidation of its tag is taken back out', async (t) => {
  const app = await build(t, { cache: { store: 'memory' } })
  const { fn, calls, entered, release } = gated()
  const memoized = app.cache.memoize(fn, { name: 'across', tags: ['t'] })
  const first = memoized(1)
  await entered
  await app.cache.invalidateTags(['t'])
  release()
  t.equal(await first, 'value 1 #1', 'the caller still gets its value')
  await sleep(20) // the write runs in the background
  t.equal(await memoized(1), 'value 1 #2', 'but it was not kept: computed again')
  t.equal(calls(), 2)
  t.equal(await memoized(1), 'value 1 #2', 'and that one, begun after the invalidation, is kept')
})

t.test('memory store: a tag invalidated before the computation began does not refuse it', async (t) => {
  const app = await build(t, { cache: { store: 'memory' } })
  await app.cache.invalidateTags(['t'])
  await sleep(5)
  let calls = 0
  const memoized = app.cache.memoize(async (id: number) => `value ${id} #${++calls}`, { name: 'after', tags: ['t'] })
  t.equal(await memoized(1), 'value 1 #1')
  await sleep(20)
  t.equal(await memoized(1), 'value 1 #1', 'kept')
  t.equal(calls, 1)
})

t.test('a store whose clock cannot be read: a tag invalidated up to CLOCK_SKEW_MS before the write refuses it', async (t) => {
  const { store, inner } = customStore({ now: async () => await Promise.reject(new Error('no clock')) })
  const { lines, logger } = logCollector('warn')
  const app = await build(t, { cache: { store }, logger })
  // Invalidated before the computation began, by the clock: with the store's clock that write would be kept (see the
  // test above); without it, a purge this recent may be later than it looks, so the page is not kept.
  await app.cache.invalidateTags(['t'])
  await sleep(5)
  let calls = 0
  const memoized = app.cache.memoize(async (id: number) => `value ${id} #${++calls}`, { name: 'skew', tags: ['t'] })
  t.equal(await memoized(1), 'value 1 #1')
  await sleep(20)
  t.equal(app.cache.stats().errors, 1, 'the unreadable clock was counted')
  t.ok(lines.some((line) => line.msg === 'fastify-cache: store time failed; serving without the cache'), 'and logged')
  const storeKey = toStoreKey(app.cache.prefix, 'memoize/skew')
  t.same(await inner.fields(storeKey), [], 'the value was written, then taken back out')
  t.equal((await inner.getField(storeKey, 'x')).version, 1, 'with a tombstone')
  t.same(await inner.fields(toStoreKey(app.cache.prefix, '__tags/t')), [], 'and the tag index refused it')
  t.equal(await memoized(1), 'value 1 #2', 'so it is computed again')
})

t.test('pruneTags on a store without list() prunes nothing, and says so', async (t) => {
  const { store, inner } = customStore()
  const app = await build(t, { cache: { store } })
  await app.cache.memoize(async (id: number) => `value ${id}`, { name: 'pruned', tags: ['p'] })(1)
  await sleep(20)
  const tagKey = toStoreKey(app.cache.prefix, '__tags/p')
  const [member] = await inner.fields(tagKey)
  t.type(member, 'string', 'the tag lists the value')
  await inner.delete([member as string], { tombstoneMs: 0 }) // gone behind the plugin's back: a dead member
  t.equal(await app.cache.pruneTags(), 0)
  t.same(await inner.fields(tagKey), [member], 'the dead member stays: without list() the indexes cannot be found')
})
