import type { BusMessage, InvalidationBus } from './bus.js'
import type { Keyspace } from './keyspace.js'
import type { LocalTier } from './l1.js'
import type { PageStore } from './stores/store.js'

/**
 * Purges (delete, invalidateTags, clear) and what must follow each one everywhere: tombstones in the store, a
 * generation bump so that nothing computed before it is stored after it, L1 copies dropped here, and (with the bus)
 * in every other instance.
 */
export class Invalidation {
  readonly #store: PageStore
  readonly #keyspace: Keyspace
  readonly #tombstoneMs: number
  readonly #l1: LocalTier | undefined
  readonly #bus: InvalidationBus | undefined
  /** Forgets the lookups and computations under way. */
  readonly #forget: () => void
  #generation = 0

  constructor (
    store: PageStore, keyspace: Keyspace, tombstoneMs: number,
    tiers: { l1: LocalTier | undefined, bus: InvalidationBus | undefined, forget: () => void }
  ) {
    this.#store = store
    this.#keyspace = keyspace
    this.#tombstoneMs = tombstoneMs
    this.#l1 = tiers.l1
    this.#bus = tiers.bus
    this.#forget = tiers.forget
  }

  /** Bumped by every purge: a response computed (or looked up) before it is not stored or shared after it. */
  get generation (): number {
    return this.#generation
  }

  /**
   * Deletes keys (every variant of a page), leaving tombstones. What this process holds is dropped before (so that
   * nothing computed before the purge is stored while it runs) and again after (what was read meanwhile). Nothing in
   * the first step can throw: stored entries are validated, so a planted one cannot keep the purge from the store.
   * Rejects when the store fails.
   */
  async purge (storeKeys: string[], tags: readonly string[] = []): Promise<number> {
    this.invalidated(storeKeys, tags)
    try {
      const held = await this.#store.delete(storeKeys, { tombstoneMs: this.#tombstoneMs })
      await this.#bus?.publish(tags.length === 0 ? { keys: storeKeys } : { keys: storeKeys, tags: [...tags] })
      return held
    } finally {
      this.invalidated(storeKeys, tags)
    }
  }

  /** Removes everything under the prefix, here and (with the bus) from every instance's L1. */
  async clear (): Promise<number> {
    this.invalidated(undefined)
    try {
      const removed = await this.#store.clear(this.#keyspace.prefix)
      await this.#bus?.publish({ all: true })
      return removed
    } finally {
      this.invalidated(undefined)
    }
  }

  /** Purges every entry carrying any of the tags, with every variant, and the tags' indexes. */
  async invalidateTags (tags: readonly string[]): Promise<number> {
    const tagKeys = tags.map((tag) => this.#keyspace.tagKey(tag))
    const members = await Promise.all(tagKeys.map(async (key) => await this.#store.fields(key)))
    const keys = [...new Set(members.flat())]
    const purged = await this.purge([...keys, ...tagKeys], tags)
    // A tag index that listed members was one of the keys purged: count only the entries.
    return purged - members.filter((names) => names.length > 0).length
  }

  /**
   * Drops tag members whose entry is gone (expired, evicted or deleted), so that a tag index refreshed by steady
   * writes does not collect dead keys. Resolves how many members it dropped.
   */
  async pruneTags (): Promise<number> {
    if (typeof this.#store.list !== 'function') return 0
    let dropped = 0
    const indexes = await this.#store.list(this.#keyspace.tagIndexPrefix, Number.MAX_SAFE_INTEGER)
    for (const { key } of indexes) {
      const members = await this.#store.fields(key)
      const alive = await Promise.all(members.map(async (member) => await this.#store.has(member)))
      for (let i = 0; i < members.length; i++) {
        if (alive[i] === false && await this.#store.deleteField(key, members[i] as string)) dropped++
      }
    }
    return dropped
  }

  /**
   * A value was written (or a memoized call deleted): its L1 copies go, here and in every instance. Nothing is purged
   * from the store, so pages being computed are stored as usual.
   */
  async evict (storeKeys: string[]): Promise<void> {
    this.#l1?.deleteKeys(storeKeys)
    await this.#bus?.publish({ evict: storeKeys })
  }

  /** Another instance purged: drop our copies and keep responses computed before it out of the cache. */
  received (message: BusMessage): void {
    if (message.all === true) this.invalidated(undefined)
    else if (message.evict !== undefined) this.#l1?.deleteKeys(message.evict)
    else this.invalidated(message.keys ?? [], message.tags ?? [])
  }

  /**
   * Nothing computed or looked up before this may be stored or shared after it, and L1 drops the keys (all of it when
   * `storeKeys` is undefined).
   */
  invalidated (storeKeys?: readonly string[], tags: readonly string[] = []): void {
    this.#generation++
    this.#forget()
    if (storeKeys === undefined) {
      this.#l1?.clear()
    } else {
      this.#l1?.deleteKeys(storeKeys)
      this.#l1?.deleteTags(tags)
    }
  }
}
