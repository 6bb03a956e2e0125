import { LRUCache } from 'lru-cache'
import type { CacheStore, StoreKeyInfo } from './store.js'

type Item =
  | { kind: 'value', value: Buffer, size: number }
  | { kind: 'fields', fields: Map<string, Buffer>, size: number }

const ITEM_OVERHEAD_BYTES = 64

function ttlMsOf (ttlMs: number): number {
  return Math.max(1, Math.ceil(ttlMs))
}

/**
 * An in-process store: an LRU bounded by bytes. Same contract as RedisStore, for tests, single-process apps, and
 * as the fallback when no Redis answers.
 */
export class MemoryStore implements CacheStore {
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

  async get (key: string): Promise<Buffer | undefined> {
    const item = this.lru.get(key)
    return item?.kind === 'value' ? item.value : undefined
  }

  async set (key: string, value: Buffer, ttlMs: number): Promise<void> {
    this.lru.set(key, { kind: 'value', value, size: value.length }, { ttl: ttlMsOf(ttlMs) })
  }

  async add (key: string, value: Buffer, ttlMs: number): Promise<boolean> {
    if (this.lru.has(key)) return false
    await this.set(key, value, ttlMs)
    return true
  }

  async has (key: string): Promise<boolean> {
    return this.lru.has(key)
  }

  async delete (keys: string[]): Promise<number> {
    let removed = 0
    for (const key of keys) {
      if (this.lru.has(key)) removed++
      this.lru.delete(key)
    }
    return removed
  }

  async getField (key: string, field: string): Promise<Buffer | undefined> {
    const item = this.lru.get(key)
    return item?.kind === 'fields' ? item.fields.get(field) : undefined
  }

  async setField (key: string, field: string, value: Buffer, ttlMs: number, maxFields: number): Promise<void> {
    const current = this.lru.get(key, { updateAgeOnGet: false })
    let item: Item & { kind: 'fields' }
    let ttl = ttlMsOf(ttlMs)
    if (current?.kind === 'fields' && (current.fields.has(field) || current.fields.size < maxFields)) {
      item = current
      ttl = Math.max(ttl, Math.ceil(this.lru.getRemainingTTL(key)))
      item.size -= (item.fields.get(field)?.length ?? 0) + (item.fields.has(field) ? field.length : 0)
    } else {
      item = { kind: 'fields', fields: new Map(), size: 0 }
    }
    item.fields.set(field, value)
    item.size += value.length + field.length
    // Setting again re-measures the item and may evict others to stay under maxBytes.
    this.lru.set(key, item, { ttl })
  }

  async deleteField (key: string, field: string): Promise<boolean> {
    const item = this.lru.get(key, { updateAgeOnGet: false })
    if (item?.kind !== 'fields' || !item.fields.has(field)) return false
    item.size -= (item.fields.get(field) as Buffer).length + field.length
    item.fields.delete(field)
    if (item.fields.size === 0) this.lru.delete(key)
    else this.lru.set(key, item, { ttl: Math.ceil(this.lru.getRemainingTTL(key)) })
    return true
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
      if (!key.startsWith(prefix)) continue
      const info: StoreKeyInfo = { key, ttlMs: Math.round(this.lru.getRemainingTTL(key)) }
      if (item.kind === 'fields') info.variants = item.fields.size
      found.push(info)
    }
    return found
  }
}
