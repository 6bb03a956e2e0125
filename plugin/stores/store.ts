/**
 * The storage contract. Every key it sees already carries the plugin's prefix. Times are milliseconds. README's
 * "Custom stores" explains it; this file only states it.
 *
 * A store must offer the value part (`CacheStore`). A store that also offers the page part (`PageStore`) keeps a
 * page's variants under one key, with versions, tombstones and fleet-wide locks; without it, pages are kept as plain
 * values (see value-pages.ts) and cross-process guarantees are lost.
 */
export interface CacheStore {
  get (key: string): Promise<Buffer | undefined>
  set (key: string, value: Buffer, ttlMs: number): Promise<void>
  /** Sets only when the key is absent (a tombstone counts as absent). Resolves whether it was set. */
  add (key: string, value: Buffer, ttlMs: number): Promise<boolean>
  has (key: string): Promise<boolean>
  /** Removes the keys. Resolves how many held data. */
  delete (keys: string[], options?: DeleteOptions): Promise<number>
  /** Removes every key that starts with `prefix`, and nothing else. Resolves how many. */
  clear (prefix: string): Promise<number>
  /** Optional: up to `limit` keys holding data under `prefix`, with their remaining time to live (-1: none). */
  list? (prefix: string, limit: number): Promise<StoreKeyInfo[]>
  /** Optional: the store's clock (epoch ms), the one deletes are stamped with. Default: this process's clock. */
  now? (): Promise<number>
  /** Optional: called on close, for stores that own a connection. */
  close? (): Promise<void>
}

export interface DeleteOptions {
  /** A page store leaves a tombstone this long (0: none) that bumps the key's version. */
  tombstoneMs?: number
}

/** The page part: a key holding variants ("fields"), with a version and per-variant locks. */
export interface PageStore extends CacheStore {
  /** One variant and the key's version; with `lock`, also the variant's lock, taken when it is missing and free. */
  getField (key: string, field: string, options?: GetFieldOptions): Promise<FieldRead>
  /** Stores one variant. Resolves whether it wrote (a version or purge condition may refuse it). */
  setField (key: string, field: string, value: Buffer, options: SetFieldOptions): Promise<boolean>
  /** Takes a variant's lock whether or not the variant is stored: false when another holder's lock is live. */
  lockField (key: string, field: string, lock: FieldLock): Promise<boolean>
  /** Releases a variant's lock if it is still `token`'s. */
  unlockField (key: string, field: string, token: string): Promise<boolean>
  deleteField (key: string, field: string): Promise<boolean>
  /** The variant names of a field key. */
  fields (key: string): Promise<string[]>
}

export interface GetFieldOptions {
  lock?: FieldLock
}

export interface SetFieldOptions {
  /** The key then lives at least this long. */
  ttlMs: number
  /** Past this many variants the least recently written are dropped, never the plain variant '' (0: no bound). */
  maxFields?: number
  /** Write only if the key's version still is this one (no delete since it was read). */
  ifVersion?: number
  /** Write only if the key was not deleted at or after this time (epoch ms, the store's clock). */
  ifNotPurgedSince?: number
  /** Release this token's lock on the variant, written or not. */
  unlock?: string
}

export interface FieldRead {
  value: Buffer | undefined
  /** The key holds something this store did not write (another type, a bad version): a miss, to be overwritten. */
  foreign?: boolean
  /** 0 until the key is first deleted; bumped by every delete. */
  version: number
  /** Only when a lock was asked for: taken (now the caller's), held (by another, live) or free (the variant is stored). */
  lock?: 'taken' | 'held' | 'free'
  /** The store's clock at the read, in ms, when the store gives it with a lock: a miss need not ask for it again. */
  now?: number
}

/** A fleet-wide lock on one variant: an unguessable token, and how long it lives unless released. */
export interface FieldLock {
  token: string
  ttlMs: number
  /** Take only a lock that expired (its holder died); a variant missing with no lock reads as `'free'`. */
  takeOverOnly?: boolean
}

export interface StoreKeyInfo {
  key: string
  ttlMs: number
  /** Number of variants for field keys; undefined for plain values. */
  variants?: number
}

export const VALUE_STORE_METHODS = ['get', 'set', 'add', 'has', 'delete', 'clear'] as const
export const PAGE_STORE_METHODS = ['getField', 'setField', 'lockField', 'unlockField', 'deleteField', 'fields'] as const

/** A ttl as a store sets it: whole milliseconds, at least one (0 would mean "no expiry" to Redis). */
export function storeTtlMs (ttlMs: number): number {
  return Math.max(1, Math.ceil(ttlMs))
}

/** Whether a store offers the page part: every one of its methods. */
export function isPageStore (store: CacheStore): store is PageStore {
  return PAGE_STORE_METHODS.every((name) => typeof (store as unknown as Record<string, unknown>)[name] === 'function')
}

/**
 * The fields a field key keeps for itself: its version, when it was last deleted (epoch ms, the store's clock), and
 * the locks of variants being computed (`' lock ' + variant`: the holder's token, a space, the expiry in epoch ms).
 * Variant names (base64url, or '') and tag members (prefixed keys) never start with a space, so never collide.
 */
export const VERSION_FIELD = ' version'
export const PURGED_FIELD = ' purged'
export const LOCK_FIELD_PREFIX = ' lock '
/** In a bounded key, when each variant was last written (`' w ' + variant`: epoch ms), to drop the oldest first. */
export const WRITTEN_FIELD_PREFIX = ' w '

/** Whether a field of a field key is the key's own bookkeeping rather than a variant. */
export function isInternalField (name: string): boolean {
  return name.charCodeAt(0) === 32
}
