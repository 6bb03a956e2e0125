import t from 'tap'
import Fastify from 'fastify'
import fastifyCache, { type CacheStore } from '../../plugin/index.js'
import { runValueStoreContract } from '../helpers/store-contract.js'

/** The smallest custom store: values only, in a Map, with expiry. README's "Custom stores" shows the same. */
class MapStore implements CacheStore {
  readonly #items = new Map<string, { value: Buffer, expiresAt: number }>()

  async get (key: string): Promise<Buffer | undefined> {
    const item = this.#items.get(key)
    if (item !== undefined && item.expiresAt <= Date.now()) this.#items.delete(key)
    return item !== undefined && item.expiresAt > Date.now() ? item.value : undefined
  }

  async set (key: string, value: Buffer, ttlMs: number): Promise<void> {
    this.#items.set(key, { value, expiresAt: Date.now() + ttlMs })
  }

  async add (key: string, value: Buffer, ttlMs: number): Promise<boolean> {
    if (await this.has(key)) return false
    await this.set(key, value, ttlMs)
    return true
  }

  async has (key: string): Promise<boolean> { return await this.get(key) !== undefined }

  async delete (keys: string[]): Promise<number> {
    let held = 0
    for (const key of keys) if (await this.has(key) && this.#items.delete(key)) held++
    return held
  }

  async clear (prefix: string): Promise<number> {
    const keys = [...this.#items.keys()].filter((key) => key.startsWith(prefix))
    for (const key of keys) this.#items.delete(key)
    return keys.length
  }
}

runValueStoreContract(t, 'a 30-line Map store', async () => ({ store: new MapStore(), prefix: 'map:' }))

t.test('a value-only store caches pages, with their variants, purges and memoized values', async (t) => {
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(fastifyCache, { store: new MapStore() })
  let renders = 0
  app.get('/', { config: { cache: { queryString: true, tags: ['index'] } } }, async (request) => {
    renders++
    return `page ${JSON.stringify(request.query)} #${renders}`
  })
  await app.ready()
  t.equal((await app.inject('/')).headers['x-cache'], 'MISS')
  t.equal((await app.inject('/?page=2')).headers['x-cache'], 'MISS')
  const hit = await app.inject('/')
  t.equal(hit.headers['x-cache'], 'HIT')
  t.equal(hit.body, 'page {} #1')
  t.equal((await app.inject('/?page=2')).body, 'page {"page":"2"} #2', 'each variant is kept')
  t.equal(await app.cache.delete('view//'), true)
  t.equal((await app.inject('/?page=2')).headers['x-cache'], 'MISS', 'a delete of the path drops every variant')
  t.equal((await app.inject('/')).headers['x-cache'], 'MISS')
  t.equal(await app.cache.invalidateTags(['index']), 1, 'tags work through the same variants')
  await app.cache.set('set-value', { n: 1 })
  t.same(await app.cache.get('set-value'), { n: 1 }, 'values through the store\'s own set and get')
  t.equal(await app.cache.add('value', 1), true)
  t.equal(await app.cache.add('value', 2), false, 'add through the store\'s own add')
  t.equal(await app.cache.has('value'), true)
  t.ok(await app.cache.clear() >= 1, 'clear through the store\'s own clear')
  t.equal(await app.cache.has('value'), false)
  t.equal((await app.inject('/')).headers['x-cache'], 'MISS')

  let calls = 0
  const square = app.cache.memoize(async function square (n: number) { calls++; return n * n })
  t.equal(await square(3), 9)
  t.equal(await square(3), 9)
  t.equal(calls, 1, 'memoized on a value-only store')
  t.equal(await app.cache.deleteMemoized(square, 3), true)
  t.equal(await square(3), 9)
  t.equal(calls, 2)
})

t.test('a store missing a value method is refused at registration, naming what is missing', async (t) => {
  const app = Fastify()
  t.teardown(async () => await app.close())
  const partial = Object.fromEntries(['get', 'set', 'add', 'has', 'delete'].map((name) => [name, async () => undefined]))
  app.register(fastifyCache, { store: partial as never })
  await t.rejects(async () => await app.ready(), { code: 'FST_CACHE_INVALID_OPTION', option: 'store', message: /missing: clear/ })
})

t.test('the page part kept on values: variants bounded (never the plain one), listing, locks and clock', async (t) => {
  const { ValuePages } = await import('../../plugin/stores/value-pages.js')
  const inner = new MapStore()
  const listing = Object.assign(inner, {
    list: async (prefix: string) => [{ key: prefix + 'listed', ttlMs: 1_000 }],
    now: async () => 42,
    closed: false,
    close: async () => { listing.closed = true }
  })
  const pages = new ValuePages(listing)
  const bytes = (text: string): Buffer => Buffer.from(text)
  await pages.setField('k', '', bytes('plain'), { ttlMs: 60_000, maxFields: 4 })
  for (let i = 0; i < 10; i++) await pages.setField('k', `v${i}`, bytes(String(i)), { ttlMs: 60_000, maxFields: 4 })
  const kept = await pages.fields('k')
  t.ok(kept.includes(''), 'the plain variant is never dropped')
  t.ok(kept.includes('v9'), 'the newest is kept')
  t.notOk(kept.includes('v0'), 'the oldest went first')
  t.ok(kept.length <= 4, `within the bound (${kept.length})`)
  await pages.setField('k', 'v9', bytes('again'), { ttlMs: 60_000, maxFields: 4 })
  t.equal((await pages.getField('k', 'v9')).value?.toString(), 'again', 'a rewrite replaces in place')
  t.same(await pages.list('p:', 10), [{ key: 'p:listed', ttlMs: 1_000 }], 'listing is the store\'s own')
  t.same(await new ValuePages(new MapStore()).list('p:', 10), [], 'a store that cannot list lists nothing')
  t.equal(await pages.lockField('k', 'v1', { token: 'a', ttlMs: 1_000 }), true, 'no lock is ever held across processes')
  t.equal(await pages.unlockField('k', 'v1', 'a'), true)
  t.equal((await pages.getField('k', 'missing', { lock: { token: 'a', ttlMs: 1_000 } })).lock, 'taken')
  t.equal((await pages.getField('k', 'missing', { lock: { token: 'a', ttlMs: 1_000, takeOverOnly: true } })).lock, 'free')
  t.equal(await pages.now(), 42, 'the store\'s clock when it has one')
  t.type(await new ValuePages(new MapStore()).now(), 'number')
  await inner.set('plain-value', bytes('not a variant map'), 60_000)
  t.same(await pages.getField('plain-value', ''), { value: undefined, version: 0, foreign: true }, 'another shape is foreign')
  t.same(await pages.fields('plain-value'), [])
  t.equal(await pages.deleteField('plain-value', ''), false)
  const head = (expiresAt: number): Buffer => {
    const bytes = Buffer.alloc(12)
    bytes.write('FCM1', 0, 'latin1')
    bytes.writeDoubleBE(expiresAt, 4)
    return bytes
  }
  const entry = Buffer.from([0, 1, 0, 0, 0, 9, 0x61]) // name 'a', a value announced as 9 bytes
  for (const [name, planted] of [['no expiry', head(Number.NaN)], ['cut in an entry\'s head', Buffer.concat([head(1e15), entry.subarray(0, 3)])],
    ['cut in a value', Buffer.concat([head(1e15), entry, Buffer.from('short')])]] as const) {
    await inner.set('planted', planted, 60_000)
    t.equal((await pages.getField('planted', 'a')).foreign, true, `${name}: foreign, not a variant`)
  }
  for (let i = 0; i < 8; i++) await pages.setField('k2', `w${i}`, bytes(String(i)), { ttlMs: 60_000, maxFields: 6 })
  t.same(await pages.fields('k2'), ['w4', 'w5', 'w6', 'w7'], 'with no plain variant, the oldest go down to half the bound')
  t.equal(await pages.setField('plain-value', 'v', bytes('page'), { ttlMs: 60_000 }), true)
  t.same(await pages.fields('plain-value'), ['v'], 'a write replaces what was not a variant map')
  t.equal(await pages.deleteField('k', 'v9'), true)
  t.equal(await pages.deleteField('k', 'v9'), false)
  await pages.close()
  t.equal(listing.closed, true, 'close reaches the store')
  await new ValuePages(new MapStore()).close()
})

t.test('a value-only store keeps every member of a tag written at once, so invalidateTags reaches them all', async (t) => {
  // Every call answers a little later, as a networked store would: the tag index rewrites overlap.
  class SlowMapStore extends MapStore {
    override async get (key: string): Promise<Buffer | undefined> {
      await new Promise((resolve) => setImmediate(resolve))
      return await super.get(key)
    }
  }
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(fastifyCache, { store: new SlowMapStore() })
  app.get('/post/:id', { config: { cache: { tags: ['posts'] } } }, async (request) => `post ${(request.params as { id: string }).id}`)
  await app.ready()
  await Promise.all([1, 2, 3, 4].map(async (id) => await app.inject(`/post/${id}`)))
  await new Promise((resolve) => setTimeout(resolve, 20)) // the writes are not awaited by the requests
  t.equal(await app.cache.invalidateTags(['posts']), 4, 'all four pages were in the tag index')
  for (const id of [1, 2, 3, 4]) t.equal((await app.inject(`/post/${id}`)).headers['x-cache'], 'MISS', `post ${id} purged`)
})

t.test('wrap: a value computed before a delete is not written while the delete is under way', async (t) => {
  let finishDelete!: () => void
  class GatedDeleteStore extends MapStore {
    gate: Promise<void> | undefined
    override async delete (keys: string[]): Promise<number> {
      await this.gate
      return await super.delete(keys)
    }
  }
  const store = new GatedDeleteStore()
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(fastifyCache, { store })
  let finishCompute!: (value: string) => void
  let entered!: () => void
  const inside = new Promise<void>((resolve) => { entered = resolve })
  const computing = app.cache.wrap('stats', async () => await new Promise<string>((resolve) => {
    finishCompute = resolve
    entered()
  }))
  await inside
  store.gate = new Promise((resolve) => { finishDelete = resolve })
  const deleting = app.cache.delete('stats')
  finishCompute('old')
  t.equal(await computing, 'old', 'the caller gets what it computed')
  finishDelete()
  await deleting
  await new Promise((resolve) => setTimeout(resolve, 20)) // a write, had one been started, would have landed
  t.equal(await app.cache.get('stats'), undefined, 'but it was not kept')
})
