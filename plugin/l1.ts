import { LRUCache } from 'lru-cache'
import type { Encoded } from './encodings.js'
import { freshForMs, type PageEntry } from './entry.js'
import { isVariantOf } from './keyspace.js'

const ENTRY_OVERHEAD_BYTES = 256

interface LocalEntry {
  entry: PageEntry
  version: number
}

/**
 * L1: decoded pages in process memory, in front of the store. An entry stays no longer than the L1 ttl nor past its
 * own freshness. While the bus is down, L1 is emptied and bypassed, so another instance's purge cannot be missed.
 */
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

export class LocalTier {
  private readonly lru: LRUCache<string, LocalEntry>
  private readonly ttlMs: number
  /** False while the invalidation bus cannot be trusted. */
  private enabled = true
  /** Entries whose body L1 copied, to their copy: requests that shared one lookup set one entry, copied once. */
  private readonly owned = new WeakMap<PageEntry, PageEntry>()

  constructor ({ maxBytes, ttlMs }: { maxBytes: number, ttlMs: number }) {
    this.ttlMs = ttlMs
    this.lru = new LRUCache<string, LocalEntry>({
      maxSize: maxBytes,
      sizeCalculation: ({ entry }, id) => bodyBytes(entry) + id.length + ENTRY_OVERHEAD_BYTES
    })
  }

  /**
   * Off (and empty) while purges from other instances may be missed: the bus is down, or not yet up.
   */
  setTrusted (trusted: boolean): void {
    this.enabled = trusted
    this.lru.clear()
  }

  get (id: string): LocalEntry | undefined {
    return this.enabled ? this.lru.get(id) : undefined
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

  /** Drops every variant of the given store keys. */
  deleteKeys (storeKeys: readonly string[]): void {
    if (this.lru.size === 0) return
    for (const id of [...this.lru.keys()]) {
      if (storeKeys.some((storeKey) => isVariantOf(id, storeKey))) this.lru.delete(id)
    }
  }

  /** Drops every page carrying any of the tags. */
  deleteTags (tags: readonly string[]): void {
    if (this.lru.size === 0 || tags.length === 0) return
    for (const [id, { entry }] of [...this.lru.entries()]) {
      if (entry.tags.some((tag) => tags.includes(tag))) this.lru.delete(id)
    }
  }

  clear (): void {
    this.lru.clear()
  }
}
