import { LRUCache } from 'lru-cache'
import type { Encoded } from './encodings.js'
import { freshForMs, type PageEntry } from './entry.js'
import { isVariantOf } from './keyspace.js'

const ENTRY_OVERHEAD_BYTES = 256

interface LocalEntry {
  entry: PageEntry
  version: number
  /** The identity bytes of a page stored compressed, once a client that accepts no coding asked for them. */
  identity?: Buffer
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
  /** The id under which L1 holds the page whose codings these are (entries served may be copies sharing them). */
  private readonly idOfCodings = new WeakMap<Encoded, string>()

  constructor ({ maxBytes, ttlMs }: { maxBytes: number, ttlMs: number }) {
    this.ttlMs = ttlMs
    this.lru = new LRUCache<string, LocalEntry | LocalValue>({
      maxSize: maxBytes,
      sizeCalculation: (held, id) => ('entry' in held ? bodyBytes(held.entry) + (held.identity?.length ?? 0) : held.json.length) +
        id.length + ENTRY_OVERHEAD_BYTES
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
    if (ttl < 1) return
    const owned = this.ownBody(entry)
    if (owned.encoded !== undefined) this.idOfCodings.set(owned.encoded, id)
    this.lru.set(id, { entry: owned, version }, { ttl })
  }

  /** The identity bytes kept beside a page L1 holds stored compressed (`keepIdentity`), if any. */
  keptIdentity (encoded: Encoded): Buffer | undefined {
    return this.heldWith(encoded)?.held.identity
  }

  /**
   * Keeps the identity bytes of a page L1 holds, once gunzipped for a client that accepts no coding, so that the next
   * such client is not gunzipped for again. They count against `maxBytes`, and go with the page.
   */
  keepIdentity (encoded: Encoded, identity: Buffer): void {
    const found = this.heldWith(encoded)
    if (found === undefined) return
    // Re-set to count the new bytes, for what is left of the page's time in L1.
    const ttl = Math.max(1, Math.floor(this.lru.getRemainingTTL(found.id)))
    this.lru.set(found.id, { ...found.held, identity }, { ttl })
  }

  private heldWith (encoded: Encoded): { id: string, held: LocalEntry } | undefined {
    const id = this.idOfCodings.get(encoded)
    const held = id === undefined ? undefined : this.lru.peek(id)
    return held !== undefined && 'entry' in held && held.entry.encoded === encoded ? { id: id as string, held } : undefined
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
