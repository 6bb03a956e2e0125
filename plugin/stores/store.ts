/**
 * The storage interface. Every key it sees already carries the plugin's prefix. Times are milliseconds.
 *
 * Plain keys hold one value. "Field" keys hold a small map of variants under one key: a page's query-string and
 * `vary` variants, a memoized function's argument lists, or a tag's members. Deleting the key drops every variant at
 * once, which is how `delete('view/<path>')` purges all of a path (Flask-Caching's issue #243).
 *
 * A delete leaves a short-lived tombstone that carries a version number. `getField` returns the version it saw and
 * `setField(…, ifVersion)` refuses to write when a delete ran since: a page computed from data older than a purge is
 * never stored, even when another process did the purge.
 *
 * A variant being computed can be locked fleet-wide, in the key itself: `getField(…, lock)` takes the lock when the
 * variant is missing (on Redis, one script call whether it hits or misses), and `setField(…, unlock)` releases it
 * with the write. A lock expires after its `ttlMs`; a delete drops it.
 *
 * Reading a key that holds the other shape resolves as missing; writing replaces it.
 */
export interface CacheStore {
  get (key: string): Promise<Buffer | undefined>
  set (key: string, value: Buffer, ttlMs: number): Promise<void>
  /** Sets only when the key is absent (a tombstone counts as absent). Resolves whether it was set. */
  add (key: string, value: Buffer, ttlMs: number): Promise<boolean>
  has (key: string): Promise<boolean>
  /**
   * Removes the keys, each leaving a tombstone for `tombstoneMs` (0: none) that bumps its version.
   * Resolves how many held data.
   */
  delete (keys: string[], tombstoneMs: number): Promise<number>
  /**
   * Reads one variant and the key's version. With `lock`, also reports the variant's lock and, when the variant is
   * missing and nobody holds a live lock on it, takes the lock (`lock: 'taken'`) atomically with the read.
   */
  getField (key: string, field: string, lock?: FieldLock): Promise<FieldRead>
  /** Takes a variant's lock whether or not the variant is stored: false when another holder's lock is live. */
  lockField (key: string, field: string, lock: FieldLock): Promise<boolean>
  /** Releases a variant's lock if it is still `token`'s; one that expired and was taken by another is left alone. */
  unlockField (key: string, field: string, token: string): Promise<boolean>
  /**
   * Stores one variant; the key then lives at least `ttlMs`. A key that would hold more than `maxFields` variants
   * starts over (0: no bound), keeping its bookkeeping and locks. With `ifVersion`, writes only if the key's version
   * still is that one; with `ifNotPurgedSince` (epoch ms), only if the key was not deleted at or after that time.
   * With `unlock`, releases that token's lock on the variant, written or not. Resolves whether it wrote.
   */
  setField (
    key: string, field: string, value: Buffer, ttlMs: number, maxFields: number, ifVersion?: number,
    ifNotPurgedSince?: number, unlock?: string
  ): Promise<boolean>
  deleteField (key: string, field: string): Promise<boolean>
  /** The variant names of a field key. */
  fields (key: string): Promise<string[]>
  /** Removes every key that starts with `prefix`, and nothing else. Resolves how many. */
  clear (prefix: string): Promise<number>
  /** Optional: up to `limit` keys holding data under `prefix`, with their remaining time to live (-1: none). */
  list? (prefix: string, limit: number): Promise<StoreKeyInfo[]>
  /** Optional: the store's clock (epoch ms), the one deletes are stamped with. Default: this process's clock. */
  now? (): Promise<number>
  /** Optional: called on close, for stores that own a connection. */
  close? (): Promise<void>
}

export interface FieldRead {
  value: Buffer | undefined
  /** The key holds something this store did not write (another type, a bad version): a miss, to be overwritten. */
  foreign?: boolean
  /** 0 until the key is first deleted; bumped by every delete. */
  version: number
  /**
   * Only when `getField` was given a lock: `'taken'` (the variant was missing and the lock is now the caller's),
   * `'held'` (another holder's lock is live) or `'free'` (the variant is stored and nobody holds its lock).
   */
  lock?: 'taken' | 'held' | 'free'
}

/** A fleet-wide lock on one variant: an unguessable token, and how long it lives unless released. */
export interface FieldLock {
  token: string
  ttlMs: number
  /**
   * Take only a lock that expired (its holder died): a variant that is missing with no lock at all was released by a
   * holder that stored nothing, and reads as `'free'`. For waiters, who then compute without a lock.
   */
  takeOverOnly?: boolean
}

export interface StoreKeyInfo {
  key: string
  ttlMs: number
  /** Number of variants for field keys; undefined for plain values. */
  variants?: number
}

export const REQUIRED_STORE_METHODS = [
  'get', 'set', 'add', 'has', 'delete', 'getField', 'lockField', 'unlockField', 'setField', 'deleteField', 'fields',
  'clear'
] as const

/**
 * The fields a field key keeps for itself: its version, when it was last deleted (epoch ms, the store's clock), and
 * the locks of variants being computed (`' lock ' + variant`: the holder's token, a space, the expiry in epoch ms).
 * Variant names (base64url, or '') and tag members (prefixed keys) never start with a space, so never collide.
 */
export const VERSION_FIELD = ' version'
export const PURGED_FIELD = ' purged'
export const LOCK_FIELD_PREFIX = ' lock '

/** Whether a field of a field key is the key's own bookkeeping rather than a variant. */
export function isInternalField (name: string): boolean {
  return name.charCodeAt(0) === 32
}
