import type { CacheEngine } from './engine.js'
import { decodeValue, encodeValue, freshForMs, type ValueEntry } from './entry.js'
import { FST_CACHE_INVALID_KEY, invalidOption } from './errors.js'
import { isTagList, pageId, valueId } from './keyspace.js'
import { ttlMsOption } from './options.js'
import { isVariantOfArgs, memoVariant } from './memo-variant.js'
import { DEFAULT_HEALTH_TIMEOUT_MS, probeHealth, type CacheHealth } from './health.js'
import type { CacheObserver } from './observers.js'
import type { CacheStats } from './stats.js'
import type { CacheStore, StoreKeyInfo } from './stores/store.js'
import { coded } from './timeout.js'
import { warmPages, type WarmInject, type WarmOptions, type WarmResult } from './warm.js'

export interface WrapOptions {
  /** Seconds. Default: the plugin's `defaultTtl`. */
  ttl?: number
  /** `invalidateTags` of any of these removes the value. */
  tags?: readonly string[]
}

/** `set(key, value, 60)` or `set(key, value, { ttl: 60, tags: ['user:1'] })`. */
export type SetOptions = number | WrapOptions

export interface MemoizeOptions extends WrapOptions {
  /** The key name of the function's entries. Default: `fn.name`; an anonymous function must be given one. */
  name?: string
}

export type Memoized<A extends unknown[], R> = (...args: A) => Promise<Awaited<R>>

export interface CachedKey {
  /** The key as the API takes it, without the prefix. */
  key: string
  /** Milliseconds left, or -1 when the key has no expiry. */
  ttlMs: number
  /** Number of variants for a page or memoized function; undefined for plain values. */
  variants?: number
}

function tagsOf (options: SetOptions | undefined): readonly string[] {
  const tags = typeof options === 'object' ? options.tags : undefined
  if (tags === undefined) return []
  if (!isTagList(tags)) throw invalidOption('tags', 'expected an array of non-empty strings')
  return tags
}

/**
 * `fastify.cache`: the Flask-Caching API on the plugin's store. Keys are given without the prefix. Values are JSON.
 * Every method rejects with an error whose `code` starts with FST_CACHE_ when the store fails.
 */
/** Moves the API to the engine built once @fastify/redis turned up (index.ts, at ready); not for apps. */
export const kUseEngine = Symbol('fastify-cache.useEngine')

export class FastifyCache {
  #engine: CacheEngine
  readonly #memoized = new WeakMap<(...args: never[]) => unknown, string>()

  #storeKind: 'redis' | 'memory' | 'custom'

  /** The app's `inject`, through which `warm` renders pages. */
  readonly #inject: WarmInject

  constructor (engine: CacheEngine, storeKind: 'redis' | 'memory' | 'custom', inject: WarmInject) {
    this.#engine = engine
    this.#storeKind = storeKind
    this.#inject = inject
  }

  /** Which store backs the cache: 'redis', 'memory' or 'custom'. */
  get storeKind (): 'redis' | 'memory' | 'custom' {
    return this.#storeKind
  }

  [kUseEngine] (engine: CacheEngine, storeKind: 'redis' | 'memory' | 'custom'): void {
    this.#engine = engine
    this.#storeKind = storeKind
  }

  /** The store in use. */
  get store (): CacheStore {
    return this.#engine.givenStore
  }

  get prefix (): string {
    return this.#engine.keyspace.prefix
  }

  /** A store call of the public API: rejects with a coded error, and with FST_CACHE_TIMEOUT when the store hangs. */
  async #call<T> (operation: string, promise: Promise<T>): Promise<T> {
    return await coded(operation, promise, this.#engine.options.operationTimeoutMs)
  }

  #storeKey (key: string): string {
    return this.#engine.keyspace.storeKey(key)
  }

  #ttlMs (options: SetOptions | undefined): number {
    return ttlMsOption(typeof options === 'object' ? options.ttl : options, 'ttl', this.#engine.options.defaultTtl)
  }

  #decode (bytes: Buffer | undefined): ValueEntry | undefined {
    if (bytes === undefined) return undefined
    try {
      const entry = decodeValue(bytes)
      return freshForMs(entry, Date.now()) > 0 ? entry : undefined
    } catch (err) {
      this.#engine.failOpen.warn(undefined, 'decode', err, 'fastify-cache: unreadable value treated as missing')
      return undefined
    }
  }

  #count (found: boolean): void {
    if (found) this.#engine.counters.hit()
    else this.#engine.counters.miss()
  }

  /**
   * A value through L1 (when on): the copy held in this process, or the store's (`read`), kept here unless something
   * was dropped from L1 meanwhile. Counted as a hit (from L1 or the store) or a miss.
   */
  async #readValue (id: string, read: () => Promise<Buffer | undefined>): Promise<{ value: unknown } | undefined> {
    const local = this.#engine.localValues
    const held = local?.get(id)
    if (held !== undefined) {
      this.#engine.counters.hit('l1')
      return held
    }
    const epoch = local?.epoch
    const found = this.#decode(await read())
    this.#count(found !== undefined)
    if (found !== undefined) local?.keep(id, found, epoch as number)
    return found
  }

  /** After a write of values: no instance's L1 keeps the values it replaced. */
  async #replaced (operation: string, storeKeys: string[]): Promise<void> {
    const local = this.#engine.localValues
    if (local !== undefined) await this.#call(operation, local.replaced(storeKeys))
  }

  /** The value, or undefined when absent or expired. */
  async get<T = unknown> (key: string): Promise<T | undefined> {
    const storeKey = this.#storeKey(key)
    const found = await this.#readValue(valueId(storeKey), async () => await this.#call('get', this.#engine.store.get(storeKey)))
    return found?.value as T | undefined
  }

  /** Stores a JSON value for `ttl` seconds (default `defaultTtl`), optionally with tags. */
  async set (key: string, value: unknown, options?: SetOptions): Promise<void> {
    const ttlMs = this.#ttlMs(options)
    const storeKey = this.#storeKey(key)
    await this.#tag(storeKey, tagsOf(options), ttlMs)
    await this.#call('set', this.#engine.store.set(storeKey, encodeValue(key, value, ttlMs), ttlMs))
    await this.#replaced('set', [storeKey])
  }

  /** Sets the value only if the key is absent. Resolves whether it was set. */
  async add (key: string, value: unknown, options?: SetOptions): Promise<boolean> {
    const ttlMs = this.#ttlMs(options)
    const storeKey = this.#storeKey(key)
    await this.#tag(storeKey, tagsOf(options), ttlMs)
    const added = await this.#call('add', this.#engine.store.add(storeKey, encodeValue(key, value, ttlMs), ttlMs))
    await this.#replaced('add', [storeKey])
    return added
  }

  /** Records `storeKey` in the index of each tag, before the value is written. */
  async #tag (storeKey: string, tags: readonly string[], ttlMs: number): Promise<void> {
    if (tags.length === 0) return
    await this.#call('tag', Promise.all(tags.map(async (tag) =>
      await this.#engine.store.setField(this.#engine.keyspace.tagKey(tag), storeKey, Buffer.alloc(0), { ttlMs }))))
  }

  async has (key: string): Promise<boolean> {
    return await this.#call('has', this.#engine.store.has(this.#storeKey(key)))
  }

  /** Deletes a value, or a page with every one of its variants (`delete('view//')`). Resolves whether it existed. */
  async delete (key: string): Promise<boolean> {
    return (await this.deleteMany([key])) > 0
  }

  /** Resolves how many of the keys existed. */
  async deleteMany (keys: readonly string[]): Promise<number> {
    if (!Array.isArray(keys)) throw new FST_CACHE_INVALID_KEY('deleteMany expects an array of keys')
    const storeKeys = keys.map((key) => this.#storeKey(key))
    const existed = await this.#call('delete', this.#engine.invalidation.purge(storeKeys))
    await this.#engine.purges.report({ keys })
    return existed
  }

  /**
   * Removes every page and value carrying any of the tags, with all their variants, here and (with the bus) in every
   * instance. Resolves how many entries held data.
   */
  async invalidateTags (tags: readonly string[]): Promise<number> {
    if (!isTagList(tags)) throw new FST_CACHE_INVALID_KEY('invalidateTags expects an array of non-empty tags')
    const purged = await this.#call('invalidateTags', this.#engine.invalidation.invalidateTags(tags))
    await this.#engine.purges.report({ tags })
    return purged
  }

  /** Drops tag index members whose entry is gone. It also runs every `tagPruneIntervalMs`. */
  async pruneTags (): Promise<number> {
    return await coded('pruneTags', this.#engine.invalidation.pruneTags())
  }

  async getMany<T = unknown> (keys: readonly string[]): Promise<Array<T | undefined>> {
    if (!Array.isArray(keys)) throw new FST_CACHE_INVALID_KEY('getMany expects an array of keys')
    const storeKeys = keys.map((key) => this.#storeKey(key))
    const found = await this.#call('getMany', Promise.all(storeKeys.map(async (key) =>
      await this.#readValue(valueId(key), async () => await this.#engine.store.get(key)))))
    return found.map((entry) => entry?.value as T | undefined)
  }

  /** Takes `{ key: value }` or `[key, value]` pairs. */
  async setMany (
    entries: Record<string, unknown> | ReadonlyArray<readonly [string, unknown]>, options?: SetOptions
  ): Promise<void> {
    const pairs = Array.isArray(entries) ? entries : Object.entries(entries as Record<string, unknown>)
    const ttlMs = this.#ttlMs(options)
    const tags = tagsOf(options)
    const encoded = pairs.map(([key, value]) => [this.#storeKey(key), encodeValue(key, value, ttlMs)] as const)
    await Promise.all(encoded.map(async ([key]) => await this.#tag(key, tags, ttlMs)))
    await this.#call('setMany', Promise.all(encoded.map(async ([key, bytes]) => await this.#engine.store.set(key, bytes, ttlMs))))
    await this.#replaced('setMany', encoded.map(([key]) => key))
  }

  /** Removes every key under the plugin's prefix and nothing else (SCAN + UNLINK). Resolves how many. */
  async clear (): Promise<number> {
    const removed = await coded('clear', this.#engine.invalidation.clear())
    await this.#engine.purges.report({ all: true })
    return removed
  }

  /**
   * Up to `limit` cached keys with their remaining time, for dashboards. Empty when the store cannot list.
   * The plugin's own bookkeeping (tag indexes, locks) is left out unless `internal` is true.
   */
  async keys ({ limit = 500, internal = false }: { limit?: number, internal?: boolean } = {}): Promise<CachedKey[]> {
    const store = this.#engine.store
    const keyspace = this.#engine.keyspace
    if (typeof store.list !== 'function') return []
    const found: StoreKeyInfo[] = await coded('list', store.list(keyspace.prefix, limit))
    const keys = found.map(({ key, ttlMs, variants }) => ({ key: keyspace.logical(key), ttlMs, variants }))
    return internal ? keys : keys.filter(({ key }) => !keyspace.isInternal(key))
  }

  /**
   * Renders `paths` (GET, each starting with '/') through the app before traffic arrives, `concurrency` at a time
   * (default 4), even where a fresh copy is stored, and resolves how many the cache stored and why the others were
   * not. Works before `listen()`; rejects only for bad arguments.
   */
  async warm (paths: readonly string[], options?: WarmOptions): Promise<WarmResult> {
    return await warmPages(this.#inject, this.#engine.refreshToken, paths, options)
  }

  /** Counters of this process. */
  stats (): CacheStats {
    return this.#engine.stats()
  }

  /**
   * The store (asked directly, within `timeoutMs`, default 500), the bus and the breaker, for a health route. Never
   * rejects, and does not touch the counters or the breaker.
   */
  async health ({ timeoutMs = DEFAULT_HEALTH_TIMEOUT_MS }: { timeoutMs?: number } = {}): Promise<CacheHealth> {
    if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) throw invalidOption('timeoutMs', 'expected a positive number of milliseconds')
    return await probeHealth(this.#engine, timeoutMs)
  }

  /**
   * Calls `observer` on what the cache does (each response of a cached route, lookups, handler runs, store errors,
   * bus deliveries), synchronously; `fastify-cache/prometheus` is built on it. Returns the function that stops it.
   */
  observe (observer: CacheObserver): () => void {
    return this.#engine.observers.add(observer)
  }

  /** Runs `compute` once per key at a time in this process; concurrent callers share its promise. */
  async #once<T> (id: string, compute: () => Promise<T>): Promise<T> {
    const { promise, shared } = this.#engine.values.run(id, compute)
    if (shared) this.#engine.counters.coalesced()
    return await (promise as Promise<T>)
  }

  /**
   * Get-or-compute: the cached value of `key`, or `fn()` stored for `ttl` seconds. Concurrent calls compute once.
   * An `undefined` result is returned but not stored.
   */
  async wrap<T> (key: string, fn: () => T | Promise<T>, options: WrapOptions = {}): Promise<Awaited<T>> {
    const ttlMs = ttlMsOption(options.ttl, 'wrap ttl', this.#engine.options.defaultTtl)
    const tags = tagsOf(options)
    const storeKey = this.#storeKey(key)
    return await this.#once('wrap\n' + storeKey, async () => {
      const found = await this.#readValue(valueId(storeKey), async () => await this.#read(() => this.#engine.store.get(storeKey)))
      if (found !== undefined) return found.value as Awaited<T>
      const generation = this.#engine.invalidation.generation
      const value = await fn()
      // A value computed across a delete may predate it: return it, but do not keep it.
      if (value !== undefined && generation === this.#engine.invalidation.generation) {
        const bytes = encodeValue(key, value, ttlMs)
        this.#write(async () => {
          await this.#tag(storeKey, tags, ttlMs)
          await this.#engine.store.set(storeKey, bytes, ttlMs)
        })
      }
      return value
    })
  }

  /**
   * Like `@cache.memoize()`: a function whose results are cached per argument list (see memo-args.ts for when two
   * lists are equal), and per object when called as a method. `deleteMemoized(fn)` drops them all;
   * `deleteMemoized(fn, ...args)` drops that argument list's, on every object.
   */
  memoize<A extends unknown[], R> (fn: (...args: A) => R, options: MemoizeOptions = {}): Memoized<A, R> {
    if (typeof fn !== 'function') throw invalidOption('memoize fn', 'expected a function')
    const name = options.name ?? fn.name
    if (typeof name !== 'string' || name.length === 0) {
      throw invalidOption('memoize name', 'an anonymous function needs { name } to key its results')
    }
    const ttlMs = ttlMsOption(options.ttl, 'memoize ttl', this.#engine.options.defaultTtl)
    const tags = tagsOf(options)
    const storeKey = this.#engine.keyspace.memoizeKey(name)
    const call = async (receiver: unknown, args: A): Promise<Awaited<R>> => {
      const variant = memoVariant(receiver, args)
      const id = pageId(storeKey, variant)
      return await this.#once(id, async () => {
        let startedAt: number | undefined
        let version: number | undefined
        const found = await this.#readValue(id, async () => {
          startedAt = tags.length === 0 ? undefined : await this.#engine.pages.now()
          const read = await this.#engine.pages.read(storeKey, variant, undefined)
          version = read?.version
          return read?.value
        })
        if (found !== undefined) return found.value as Awaited<R>
        const value = await Reflect.apply(fn, receiver, args)
        if (value !== undefined) {
          this.#engine.pages.write(storeKey, variant, encodeValue(name, value, ttlMs),
            { ttlMs, tags, ifVersion: version, startedAt })
        }
        return value
      })
    }
    // A function, not an arrow: a method memoized on a prototype gets its `this`.
    const memoized = async function (this: unknown, ...args: A): Promise<Awaited<R>> {
      return await call(this, args)
    }
    Object.defineProperty(memoized, 'name', { value: name })
    this.#memoized.set(memoized as never, name)
    this.#memoized.set(fn as never, name)
    return memoized
  }

  /**
   * With arguments, drops that call's entry, and the same call's entry of every object it was called on as a method;
   * without, every entry of `fn`. Takes the memoized or the original.
   */
  async deleteMemoized (fn: (...args: never[]) => unknown, ...args: unknown[]): Promise<boolean> {
    const name = this.#memoized.get(fn)
    if (name === undefined) throw new FST_CACHE_INVALID_KEY('deleteMemoized: this function was not memoized by this cache')
    const storeKey = this.#engine.keyspace.memoizeKey(name)
    if (args.length === 0) return (await this.#call('deleteMemoized', this.#engine.invalidation.purge([storeKey]))) > 0
    const argsVariant = memoVariant(undefined, args)
    this.#engine.invalidation.invalidated([])
    const store = this.#engine.store
    const variants = (await this.#call('deleteMemoized', store.fields(storeKey)))
      .filter((variant) => isVariantOfArgs(variant, argsVariant))
    const deleted = await this.#call('deleteMemoized', Promise.all([...new Set([argsVariant, ...variants])]
      .map(async (variant) => await store.deleteField(storeKey, variant))))
    // Every instance drops the function's values from L1: more than these calls', which costs only a store read.
    await this.#replaced('deleteMemoized', [storeKey])
    return deleted.includes(true)
  }

  // wrap and memoize fail open like pages do: a sick store computes the value rather than failing the call,
  // and the write is not awaited, so a hung store cannot hold the caller.
  async #read (call: () => Promise<Buffer | undefined>): Promise<Buffer | undefined> {
    return await this.#engine.failOpen.call('lookup', call, this.#engine.options.lookupTimeoutMs)
  }

  async #write (call: () => Promise<void>): Promise<void> {
    this.#engine.counters.write()
    await this.#engine.failOpen.call('write', call)
  }
}
