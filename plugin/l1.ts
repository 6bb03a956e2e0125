import { LRUCache } from 'lru-cache'
import type { Encoded } from './encodings.js'
import { freshForMs, type PageEntry } from './entry.js'
import { isVariantOf } from './keyspace.js'

const ENTRY_OVERHEAD_BYTES = 256

interface LocalEntry {
  entry: PageEntry
  version: number
}

/** A `get`/`wrap`/`memoize` value, as JSON: parsed afresh for each caller, who may change what it is given. */
interface LocalValue {
  json: string
}

/** The bytes an entry holds: its body, or its stored codings. */
function bodyBytes (entry: PageEntry): number {
  return entry.encoded === undefined ? entry.body.length : (entry.encoded.br?.length ?? 0) + entry.encoded.gzip.length
}

function ownCodings (encoded: Encoded): Encoded {
  const gzip = ownCopy(encoded.gzip)
  return encoded.br === undefined ? { gzip } : { br: ownCopy(encoded.br), gzip }
}

function ownCopy (bytes: Buffer): Buffer {
  const own = Buffer.allocUnsafeSlow(bytes.length)
  bytes.copy(own)
  return own
}

/**
 * L1: decoded pages, and values, in process memory, in front of the store. An entry stays no longer than the L1 ttl
 * nor past its own freshness. While the bus is down, L1 is emptied and bypassed, so another instance's purge cannot be
 * missed. Pages and values never share an id (keyspace.ts: `valueId`), so each getter knows what it finds.
 */
export class LocalTier {
  private readonly lru: LRUCache<string, LocalEntry | LocalValue>
  private readonly ttlMs: number
  /** False while the invalidation bus cannot be trusted. */
  private enabled = true
  /** Bumped by every drop: a value read from the store before one is not kept after it (`setValue`). */
  private drops = 0
  /** Entries whose body L1 copied, to their copy: requests that shared one lookup set one entry, copied once. */
  private readonly owned = new WeakMap<PageEntry, PageEntry>()

  constructor ({ maxBytes, ttlMs }: { maxBytes: number, ttlMs: number }) {
    this.ttlMs = ttlMs
    this.lru = new LRUCache<string, LocalEntry | LocalValue>({
      maxSize: maxBytes,
      sizeCalculation: (held, id) => ('entry' in held ? bodyBytes(held.entry) : held.json.length) + id.length + ENTRY_OVERHEAD_BYTES
    })
  }

  /**
   * Off (and empty) while purges from other instances may be missed: the bus is down, or not yet up.
   */
  setTrusted (trusted: boolean): void {
    this.enabled = trusted
    this.clear()
  }

  get (id: string): LocalEntry | undefined {
    return this.enabled ? this.lru.get(id) as LocalEntry | undefined : undefined
  }

  /** A value's JSON; `id` is a `valueId`. */
  getValue (id: string): string | undefined {
    return this.enabled ? (this.lru.get(id) as LocalValue | undefined)?.json : undefined
  }

  /** Taken before a value is read from the store, and handed back to `setValue`. */
  get epoch (): number {
    return this.drops
  }

  /**
   * Keeps a value read (or written) since `epoch`, unless something was dropped meanwhile: the drop may have been
   * this value's, and L1 would then serve what a purge or another instance's write replaced.
   */
  setValue (id: string, json: string, freshMs: number, epoch: number): void {
    const ttl = Math.min(this.ttlMs, freshMs)
    if (this.enabled && epoch === this.drops && ttl >= 1) this.lru.set(id, { json }, { ttl })
  }

  set (id: string, entry: PageEntry, version: number): void {
    if (!this.enabled) return
    const ttl = Math.min(this.ttlMs, freshForMs(entry, Date.now()))
    if (ttl >= 1) this.lru.set(id, { entry: this.ownBody(entry), version }, { ttl })
  }

  /**
   * A body that is a view of a larger buffer (ioredis hands back views of the socket read, which holds other replies
   * too; a page just stored is a view of its frame) is copied into a buffer of its own when L1 takes it: L1 then holds,
   * and counts against `maxBytes`, only the page's own bytes.
   */
  private ownBody (entry: PageEntry): PageEntry {
    const body = entry.encoded?.gzip ?? entry.body
    if (body.buffer.byteLength <= bodyBytes(entry) + ENTRY_OVERHEAD_BYTES) return entry
    let owned = this.owned.get(entry)
    if (owned === undefined) {
      owned = entry.encoded === undefined
        ? { ...entry, body: ownCopy(entry.body) }
        : { ...entry, encoded: ownCodings(entry.encoded) }
      this.owned.set(entry, owned)
    }
    return owned
  }

  /** Drops every variant of the given store keys, and the values under them. */
  deleteKeys (storeKeys: readonly string[]): void {
    this.drops++
    if (this.lru.size === 0) return
    for (const id of [...this.lru.keys()]) {
      if (storeKeys.some((storeKey) => isVariantOf(id, storeKey))) this.lru.delete(id)
    }
  }

  /** Drops every page carrying any of the tags. (A value's tags are in the store's index: it is dropped by key.) */
  deleteTags (tags: readonly string[]): void {
    this.drops++
    if (this.lru.size === 0 || tags.length === 0) return
    for (const [id, held] of [...this.lru.entries()]) {
      if ('entry' in held && held.entry.tags.some((tag) => tags.includes(tag))) this.lru.delete(id)
    }
  }

  clear (): void {
    this.drops++
    this.lru.clear()
  }
}
