/**
 * The storage interface. Every key it sees already carries the plugin's prefix.
 *
 * Plain keys hold one value. "Field" keys hold a small map of variants under one key: a page's query-string and
 * `vary` variants, or a memoized function's argument lists. Deleting the key drops every variant at once, which is
 * how `delete('view/<path>')` purges all of a path (Flask-Caching's issue #243).
 *
 * Times are milliseconds. Reading a key that holds the other shape resolves `undefined`; writing replaces it.
 */
export interface CacheStore {
  get (key: string): Promise<Buffer | undefined>
  set (key: string, value: Buffer, ttlMs: number): Promise<void>
  /** Sets only when the key is absent. Resolves whether it was set. */
  add (key: string, value: Buffer, ttlMs: number): Promise<boolean>
  has (key: string): Promise<boolean>
  /** Resolves how many keys existed. */
  delete (keys: string[]): Promise<number>
  getField (key: string, field: string): Promise<Buffer | undefined>
  /**
   * Stores one variant. The key lives at least `ttlMs` from now. When the key would hold more than `maxFields`
   * variants, the older ones are dropped so that one path cannot grow without bound.
   */
  setField (key: string, field: string, value: Buffer, ttlMs: number, maxFields: number): Promise<void>
  deleteField (key: string, field: string): Promise<boolean>
  /** Removes every key that starts with `prefix`, and nothing else. Resolves how many. */
  clear (prefix: string): Promise<number>
  /** Optional: up to `limit` keys under `prefix` with their remaining time to live (-1: none). */
  list? (prefix: string, limit: number): Promise<StoreKeyInfo[]>
  /** Optional: called on close, for stores that own a connection. */
  close? (): Promise<void>
}

export interface StoreKeyInfo {
  key: string
  ttlMs: number
  /** Number of variants for field keys; undefined for plain values. */
  variants?: number
}

export const REQUIRED_STORE_METHODS = [
  'get', 'set', 'add', 'has', 'delete', 'getField', 'setField', 'deleteField', 'clear'
] as const
