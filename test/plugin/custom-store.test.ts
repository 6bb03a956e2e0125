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
