import type { FastifyBaseLogger } from 'fastify'
import { decodePage, type PageEntry } from './entry.js'
import type { FailOpen } from './fail-open.js'
import type { FleetLocks } from './fleet-locks.js'
import type { Keyspace } from './keyspace.js'
import { SingleFlight } from './single-flight.js'
import type { CacheCounters } from './stats.js'
import type { FieldRead, PageStore } from './stores/store.js'

/** Allowed disagreement between clocks, used only when the store's own clock could not be read. */
export const CLOCK_SKEW_MS = 1_000
const EMPTY = Buffer.alloc(0)

export interface VariantWrite {
  /** How long the variant (and so its key) lives. */
  ttlMs: number
  tags: readonly string[]
  /** The key's version when it was looked up; a delete since refuses the write. */
  ifVersion: number | undefined
  /** When the computation began, by the store's clock: a tag invalidated since keeps the entry out. */
  startedAt: number | undefined
  /** The fleet lock this write releases. */
  unlock?: string | undefined
}

interface StoredPagesSettings {
  lookupTimeoutMs: number
  maxVariants: number
  tombstoneMs: number
}

/**
 * Pages and memoized values as variants of a key in the store: reads shared by concurrent requests, decoding, and
 * writes that never keep what a purge has overtaken.
 */
export class StoredPages {
  readonly #store: PageStore
  readonly #failOpen: FailOpen
  readonly #locks: FleetLocks
  readonly #keyspace: Keyspace
  readonly #counters: CacheCounters
  readonly #settings: StoredPagesSettings
  /** Lookups under way, shared by concurrent requests for one variant. */
  readonly #lookups = new SingleFlight<FieldRead | undefined>()
  /** Requests that shared one lookup share its bytes: decoded once. */
  readonly #decoded = new WeakMap<Buffer, PageEntry>()

  constructor (
    store: PageStore, failOpen: FailOpen, locks: FleetLocks, keyspace: Keyspace, counters: CacheCounters,
    settings: StoredPagesSettings
  ) {
    this.#store = store
    this.#failOpen = failOpen
    this.#locks = locks
    this.#keyspace = keyspace
    this.#counters = counters
    this.#settings = settings
  }

  /**
   * One variant: one store round trip, shared by concurrent requests, bounded in time. With `lock`, a missing variant
   * is locked fleet-wide in the same call; the request that computes it claims the lock (`FleetLocks.claim`).
   */
  read (storeKey: string, variant: string, log: FastifyBaseLogger | undefined, lock = false): Promise<FieldRead | undefined> {
    const id = (lock ? 'L' : 'R') + storeKey + '\n' + variant
    return this.#lookups.run(id, lock
      ? async () => await this.#locks.readOrLock(storeKey, variant, log as FastifyBaseLogger)
      : async () => await this.#failOpen.call('lookup', () => this.#store.getField(storeKey, variant),
        this.#settings.lookupTimeoutMs, log)).promise
  }

  /** A key held data of another type or a version we did not write: counted, logged, read as a miss. */
  foreign (log: FastifyBaseLogger): void {
    this.#counters.error()
    this.#failOpen.warn(log, 'decode', undefined, 'fastify-cache: foreign data under the prefix treated as a miss; it will be overwritten')
  }

  /** Decodes a stored page; corrupt or foreign bytes are logged and read as a miss (and later overwritten). */
  decode (bytes: Buffer, log: FastifyBaseLogger): PageEntry | undefined {
    const decoded = this.#decoded.get(bytes)
    if (decoded !== undefined) return decoded
    try {
      const entry = decodePage(bytes)
      this.#decoded.set(bytes, entry)
      return entry
    } catch (err) {
      this.#counters.error()
      this.#failOpen.warn(log, 'decode', err, 'fastify-cache: unreadable entry treated as a miss')
      return undefined
    }
  }

  /** The store's clock, for ordering a computation against purges; undefined when the store cannot say. */
  async now (log?: FastifyBaseLogger): Promise<number | undefined> {
    const store = this.#store
    if (typeof store.now !== 'function') return Date.now()
    return await this.#failOpen.call('time', async () => await (store.now as () => Promise<number>)(),
      this.#settings.lookupTimeoutMs, log)
  }

  /**
   * Stores a variant in the background; a failure is logged and dropped. Nothing computed from data older than a
   * purge is kept, whichever process purged: `ifVersion` refuses the write when the key was deleted since it was
   * read; `startedAt` refuses the tag index writes when one of its tags was invalidated since, and the entry is then
   * taken back out. An invalidation after the index writes finds the key and bumps its version, refusing the write.
   */
  write (storeKey: string, variant: string, bytes: Buffer, write: VariantWrite, log?: FastifyBaseLogger): Promise<boolean> {
    this.#counters.write()
    const { ttlMs, tags, ifVersion, startedAt, unlock } = write
    return this.#failOpen.call('write', async () => {
      // All in one tick, so that a lookup issued after this response finds the page (one connection keeps order).
      const since = tags.length === 0 ? undefined : startedAt ?? Date.now() - CLOCK_SKEW_MS
      const indexing = Promise.all(tags.map(async (tag) => await this.#store.setField(this.#keyspace.tagKey(tag), storeKey,
        EMPTY, { ttlMs, ifNotPurgedSince: since })))
      const writing = this.#store.setField(storeKey, variant, bytes,
        { ttlMs, maxFields: this.#settings.maxVariants, ifVersion, unlock })
      const [indexed, written] = await Promise.all([indexing, writing])
      if (!indexed.includes(false)) return written
      // A tag was invalidated after this computation began: take the entry back out, with a tombstone.
      if (written) await this.#store.delete([storeKey], { tombstoneMs: this.#settings.tombstoneMs })
      return false
    }, undefined, log).then((written) => {
      // The write that carried the unlock never ran or failed: release the lock on its own.
      if (written === undefined && unlock !== undefined) this.#locks.unlock(storeKey, variant, unlock, log)
      return written === true
    })
  }

  /** After a purge: lookups under way may have read what it removed, so later requests read again. */
  forgetLookups (): void {
    this.#lookups.clear()
  }
}
