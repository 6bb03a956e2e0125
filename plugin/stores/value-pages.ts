import type {
  CacheStore, DeleteOptions, FieldLock, FieldRead, GetFieldOptions, PageStore, SetFieldOptions, StoreKeyInfo
} from './store.js'

const MAGIC = 0x46434d31 // 'FCM1'

const HEAD_BYTES = 12

interface Variants {
  map: Map<string, Buffer>
  /** When the key expires (epoch ms): a rewrite keeps the key alive as long as its longest variant. */
  expiresAt: number
}

/**
 * All the variants of one key, framed into one value: magic, expiry (a double), then (name length, value length,
 * name, value) for each.
 */
function encodeVariants ({ map, expiresAt }: Variants): Buffer {
  const head = Buffer.allocUnsafe(HEAD_BYTES)
  head.writeUInt32BE(MAGIC, 0)
  head.writeDoubleBE(expiresAt, 4)
  const parts: Buffer[] = [head]
  for (const [name, value] of map) {
    const nameBytes = Buffer.from(name)
    const head = Buffer.allocUnsafe(6)
    head.writeUInt16BE(nameBytes.length, 0)
    head.writeUInt32BE(value.length, 2)
    parts.push(head, nameBytes, value)
  }
  return Buffer.concat(parts)
}
/** undefined when the bytes are not a framed variant map (a plain value, or foreign data). */
function decodeVariants (bytes: Buffer): Variants | undefined {
  if (bytes.length < HEAD_BYTES || bytes.readUInt32BE(0) !== MAGIC) return undefined
  const map = new Map<string, Buffer>()
  const expiresAt = bytes.readDoubleBE(4)
  if (!Number.isFinite(expiresAt)) return undefined
  let at = HEAD_BYTES
  while (at < bytes.length) {
    if (at + 6 > bytes.length) return undefined
    const nameLength = bytes.readUInt16BE(at)
    const valueLength = bytes.readUInt32BE(at + 2)
    const end = at + 6 + nameLength + valueLength
    if (end > bytes.length) return undefined
    map.set(bytes.toString('utf8', at + 6, at + 6 + nameLength), bytes.subarray(at + 6 + nameLength, end))
    at = end
  }
  return { map, expiresAt }
}

/**
 * The page part on top of a store that offers only values: a key's variants are one value, read and rewritten
 * whole, one rewrite at a time within a process. What is lost: two processes writing variants of one key at once may
 * drop one (it is computed again later), there are no versions or tombstones (a page computed across a purge in
 * another process may be stored), and no fleet-wide locks (each process computes a cold page once).
 */
export class ValuePages implements PageStore {
  readonly #store: CacheStore
  /** Rewrites of a key in this process, one after another: concurrent tag index writes must not drop each other. */
  readonly #rewrites = new Map<string, Promise<unknown>>()

  constructor (store: CacheStore) {
    this.#store = store
  }

  async get (key: string): Promise<Buffer | undefined> { return await this.#store.get(key) }
  async set (key: string, value: Buffer, ttlMs: number): Promise<void> { await this.#store.set(key, value, ttlMs) }
  async add (key: string, value: Buffer, ttlMs: number): Promise<boolean> { return await this.#store.add(key, value, ttlMs) }
  async has (key: string): Promise<boolean> { return await this.#store.has(key) }
  async delete (keys: string[], _options?: DeleteOptions): Promise<number> { return await this.#store.delete(keys) }
  async clear (prefix: string): Promise<number> { return await this.#store.clear(prefix) }

  async list (prefix: string, limit: number): Promise<StoreKeyInfo[]> {
    return typeof this.#store.list === 'function' ? await this.#store.list(prefix, limit) : []
  }

  /** The key's variants; undefined when it holds something else. */
  async #variants (key: string): Promise<Variants | undefined> {
    const bytes = await this.#store.get(key)
    return bytes === undefined ? { map: new Map(), expiresAt: 0 } : decodeVariants(bytes)
  }

  async #write (key: string, variants: Variants): Promise<void> {
    if (variants.map.size === 0) await this.#store.delete([key])
    else await this.#store.set(key, encodeVariants(variants), Math.max(1, variants.expiresAt - Date.now()))
  }

  async getField (key: string, field: string, { lock }: GetFieldOptions = {}): Promise<FieldRead> {
    const variants = await this.#variants(key)
    if (variants === undefined) return { value: undefined, version: 0, foreign: true }
    const read: FieldRead = { value: variants.map.get(field), version: 0 }
    // No lock can be held across processes here: a missing variant is always the caller's to compute.
    if (lock !== undefined) read.lock = read.value === undefined && lock.takeOverOnly !== true ? 'taken' : 'free'
    return read
  }

  /** Runs `rewrite` once the key's earlier rewrites in this process are done. */
  async #serially<T> (key: string, rewrite: () => Promise<T>): Promise<T> {
    const before = this.#rewrites.get(key) ?? Promise.resolve()
    const running = before.then(rewrite, rewrite)
    this.#rewrites.set(key, running)
    try {
      return await running
    } finally {
      if (this.#rewrites.get(key) === running) this.#rewrites.delete(key)
    }
  }

  async setField (key: string, field: string, value: Buffer, options: SetFieldOptions): Promise<boolean> {
    return await this.#serially(key, async () => await this.#setField(key, field, value, options))
  }

  async #setField (key: string, field: string, value: Buffer, { ttlMs, maxFields = 0 }: SetFieldOptions): Promise<boolean> {
    const variants = await this.#variants(key) ?? { map: new Map<string, Buffer>(), expiresAt: 0 }
    const map = variants.map
    if (map.has(field)) map.delete(field) // re-inserted last: the map stays in write order
    else if (maxFields > 0 && map.size >= maxFields) {
      // The least recently written go first, down to half the bound; never the plain variant ''.
      let drop = map.size + 1 - Math.floor(maxFields / 2)
      for (const name of map.keys()) {
        if (drop <= 0) break
        if (name !== '' && map.delete(name)) drop--
      }
    }
    map.set(field, value)
    variants.expiresAt = Math.max(variants.expiresAt, Date.now() + ttlMs)
    await this.#write(key, variants)
    return true
  }

  async lockField (_key: string, _field: string, _lock: FieldLock): Promise<boolean> { return true }
  async unlockField (_key: string, _field: string, _token: string): Promise<boolean> { return true }

  async deleteField (key: string, field: string): Promise<boolean> {
    return await this.#serially(key, async () => {
      const variants = await this.#variants(key)
      if (variants?.map.delete(field) !== true) return false
      await this.#write(key, variants)
      return true
    })
  }

  async fields (key: string): Promise<string[]> {
    const variants = await this.#variants(key)
    return variants === undefined ? [] : [...variants.map.keys()]
  }

  async now (): Promise<number> {
    return typeof this.#store.now === 'function' ? await this.#store.now() : Date.now()
  }

  async close (): Promise<void> { await this.#store.close?.() }
}
