import { LRUCache } from 'lru-cache'
import {
  storeTtlMs, type DeleteOptions, type FieldLock, type FieldRead, type GetFieldOptions, type PageStore, type SetFieldOptions,
  type StoreKeyInfo
} from './store.js'

interface FieldsItem {
  kind: 'fields'
  fields: Map<string, Buffer>
  size: number
  version: number
  purgedAt: number
  /** Variants being computed: the holder's token and when its lock expires (epoch ms). */
  locks?: Map<string, { token: string, expiresAt: number }>
}
type Item = { kind: 'value', value: Buffer, size: number } | FieldsItem

const ITEM_OVERHEAD_BYTES = 64

function isTombstone (item: Item | undefined): boolean {
  return item?.kind === 'fields' && item.fields.size === 0
}

/**
 * An in-process store: an LRU bounded by bytes. Same contract as RedisStore, for tests, single-process apps, and
 * as the fallback when no Redis answers.
 */
export class MemoryStore implements PageStore {
  private readonly lru: LRUCache<string, Item>

  constructor ({ maxBytes }: { maxBytes: number }) {
    this.lru = new LRUCache<string, Item>({
      maxSize: maxBytes,
      sizeCalculation: (item, key) => item.size + key.length + ITEM_OVERHEAD_BYTES
    })
  }

  /** Bytes held, for tests and the dashboard. */
  get calculatedSize (): number {
    return this.lru.calculatedSize
  }

  private remainingTtl (key: string): number {
    return Math.ceil(this.lru.getRemainingTTL(key))
  }

  async get (key: string): Promise<Buffer | undefined> {
    const item = this.lru.get(key)
    return item?.kind === 'value' ? item.value : undefined
  }

  async set (key: string, value: Buffer, ttlMs: number): Promise<void> {
    this.lru.set(key, { kind: 'value', value, size: value.length }, { ttl: storeTtlMs(ttlMs) })
  }

  async add (key: string, value: Buffer, ttlMs: number): Promise<boolean> {
    if (await this.has(key)) return false
    await this.set(key, value, ttlMs)
    return true
  }

  async has (key: string): Promise<boolean> {
    const item = this.lru.get(key, { updateAgeOnGet: false })
    return item !== undefined && !isTombstone(item)
  }

  async delete (keys: string[], { tombstoneMs = 0 }: DeleteOptions = {}): Promise<number> {
    let held = 0
    for (const key of keys) {
      const item = this.lru.get(key, { updateAgeOnGet: false })
      if (item !== undefined && !isTombstone(item)) held++
      this.lru.delete(key)
      if (tombstoneMs > 0) {
        const version = (item?.kind === 'fields' ? item.version : 0) + 1
        this.lru.set(key, { kind: 'fields', fields: new Map(), size: 0, version, purgedAt: Date.now() }, { ttl: storeTtlMs(tombstoneMs) })
      }
    }
    return held
  }

  async getField (key: string, field: string, { lock }: GetFieldOptions = {}): Promise<FieldRead> {
    const item = this.lru.get(key)
    // Foreign data carries no lock: the caller computes without one, and its write replaces the key.
    if (item !== undefined && item.kind !== 'fields') return { value: undefined, version: 0, foreign: true }
    const read: FieldRead = { value: item?.fields.get(field), version: item?.version ?? 0 }
    if (lock === undefined) return read
    if (this.lockHeld(item, field, lock.ttlMs)) read.lock = 'held'
    else if (read.value !== undefined || (lock.takeOverOnly === true && item?.locks?.has(field) !== true)) read.lock = 'free'
    else {
      this.takeLock(key, item, field, lock)
      read.lock = 'taken'
    }
    return read
  }

  /** A live lock, bounded by `ttlMs` from now like RedisStore's: no expiry outlives the lock timeout. */
  private lockHeld (item: FieldsItem | undefined, field: string, ttlMs: number): boolean {
    const lock = item?.locks?.get(field)
    const now = Date.now()
    return lock !== undefined && lock.expiresAt > now && lock.expiresAt <= now + storeTtlMs(ttlMs)
  }

  private takeLock (key: string, current: FieldsItem | undefined, field: string, lock: FieldLock): void {
    const ttl = storeTtlMs(lock.ttlMs)
    let item = current
    if (item === undefined) {
      item = { kind: 'fields', fields: new Map(), size: 0, version: 0, purgedAt: 0 }
      this.lru.set(key, item, { ttl })
    } else if (this.remainingTtl(key) < ttl) {
      this.lru.set(key, item, { ttl })
    }
    item.locks ??= new Map()
    item.locks.set(field, { token: lock.token, expiresAt: Date.now() + ttl })
  }

  async lockField (key: string, field: string, lock: FieldLock): Promise<boolean> {
    const item = this.lru.get(key, { updateAgeOnGet: false })
    if (item?.kind === 'value' || (item !== undefined && this.lockHeld(item, field, lock.ttlMs))) return false
    this.takeLock(key, item, field, lock)
    return true
  }

  async unlockField (key: string, field: string, token: string): Promise<boolean> {
    const item = this.lru.get(key, { updateAgeOnGet: false })
    if (item?.kind !== 'fields' || item.locks?.get(field)?.token !== token) return false
    return item.locks.delete(field)
  }

  async setField (key: string, field: string, value: Buffer, options: SetFieldOptions): Promise<boolean> {
    const { ttlMs, maxFields = 0, ifVersion, ifNotPurgedSince, unlock } = options
    if (unlock !== undefined) await this.unlockField(key, field, unlock)
    const current = this.lru.get(key, { updateAgeOnGet: false })
    const version = current?.kind === 'fields' ? current.version : 0
    if (ifVersion !== undefined && ifVersion !== version) return false
    if (ifNotPurgedSince !== undefined && current?.kind === 'fields' && current.purgedAt >= ifNotPurgedSince) return false
    let item: FieldsItem
    let ttl = storeTtlMs(ttlMs)
    if (current?.kind === 'fields') {
      item = current
      ttl = Math.max(ttl, this.remainingTtl(key))
      const previous = item.fields.get(field)
      if (previous !== undefined) {
        item.size -= previous.length + field.length
        // A Map keeps insertion order: moved to the end, the fields stay in the order they were last written.
        item.fields.delete(field)
      } else if (maxFields > 0 && item.fields.size >= maxFields) {
        this.evictOldest(item, maxFields)
      }
    } else {
      item = { kind: 'fields', fields: new Map(), size: 0, version, purgedAt: 0 }
    }
    item.fields.set(field, value)
    item.size += value.length + field.length
    // Setting again re-measures the item and may evict others to stay under maxBytes.
    this.lru.set(key, item, { ttl })
    return true
  }

  /**
   * Drops the least recently written variants down to half the bound, like RedisStore, never the plain
   * variant ''.
   */
  private evictOldest (item: FieldsItem, maxFields: number): void {
    let drop = item.fields.size + 1 - Math.floor(maxFields / 2)
    for (const [name, value] of item.fields) {
      if (drop <= 0) break
      if (name === '') continue
      item.fields.delete(name)
      item.size -= value.length + name.length
      drop--
    }
  }

  async deleteField (key: string, field: string): Promise<boolean> {
    const item = this.lru.get(key, { updateAgeOnGet: false })
    if (item?.kind !== 'fields' || !item.fields.has(field)) return false
    item.size -= (item.fields.get(field) as Buffer).length + field.length
    item.fields.delete(field)
    if (item.fields.size === 0 && item.version === 0 && (item.locks?.size ?? 0) === 0) this.lru.delete(key)
    else this.lru.set(key, item, { ttl: this.remainingTtl(key) })
    return true
  }

  async fields (key: string): Promise<string[]> {
    const item = this.lru.get(key, { updateAgeOnGet: false })
    return item?.kind === 'fields' ? [...item.fields.keys()] : []
  }

  async clear (prefix: string): Promise<number> {
    let removed = 0
    for (const key of [...this.lru.keys()]) {
      if (key.startsWith(prefix) && this.lru.delete(key)) removed++
    }
    return removed
  }

  async list (prefix: string, limit: number): Promise<StoreKeyInfo[]> {
    const found: StoreKeyInfo[] = []
    for (const [key, item] of this.lru.entries()) {
      if (found.length >= limit) break
      if (!key.startsWith(prefix) || isTombstone(item)) continue
      const info: StoreKeyInfo = { key, ttlMs: Math.round(this.lru.getRemainingTTL(key)) }
      if (item.kind === 'fields') info.variants = item.fields.size
      found.push(info)
    }
    return found
  }
}
