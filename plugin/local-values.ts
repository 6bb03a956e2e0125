import { freshForMs, type ValueEntry } from './entry.js'
import type { Invalidation } from './invalidation.js'
import type { LocalTier } from './l1.js'

/**
 * bentocache's L1 for values: `get`/`wrap`/`memoize` values kept in process memory, on the rules L1 keeps pages by. A
 * value read from the store is kept only if nothing was dropped from L1 since the read began (a purge, or another
 * instance's write, may have been this value's); a write or a delete of ours drops the value in every instance (bus).
 */
export class LocalValues {
  readonly #l1: LocalTier
  readonly #invalidation: Invalidation

  constructor (l1: LocalTier, invalidation: Invalidation) {
    this.#l1 = l1
    this.#invalidation = invalidation
  }

  /** The value held here, parsed afresh: the caller may change what it is given. */
  get (id: string): { value: unknown } | undefined {
    const json = this.#l1.getValue(id)
    return json === undefined ? undefined : { value: JSON.parse(json) }
  }

  /** Taken before a store read, and handed to `keep`. */
  get epoch (): number {
    return this.#l1.epoch
  }

  keep (id: string, entry: ValueEntry, epoch: number): void {
    this.#l1.setValue(id, JSON.stringify(entry.value), freshForMs(entry, Date.now()), epoch)
  }

  /** After a write (or a memoized call's delete) of ours: no instance keeps the value it replaced. */
  async replaced (storeKeys: string[]): Promise<void> {
    await this.#invalidation.evict(storeKeys)
  }
}
