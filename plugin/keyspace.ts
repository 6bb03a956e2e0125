import { hash } from 'node:crypto'
import { FST_CACHE_INVALID_KEY } from './errors.js'

/** Longest key written to the store, prefix included; longer keys keep a readable head and end in a hash. */
export const MAX_KEY_BYTES = 250
/** Flask-Caching's page namespace: the index is `view//`. */
export const PAGE_NAMESPACE = 'view/'
export const MEMOIZE_NAMESPACE = 'memoize/'
/** The plugin's own bookkeeping (tag indexes, the bus channel) lives under `__`, out of `keys()` by default. */
export const INTERNAL_NAMESPACE = '__'
export const TAG_NAMESPACE = INTERNAL_NAMESPACE + 'tags/'
const BUS_NAME = INTERNAL_NAMESPACE + 'bus'
const HEALTH_NAME = INTERNAL_NAMESPACE + 'health'
const HASH_MARK = '~sha256:'
/** Separates a store key from a variant in a page id; never part of a variant (base64url, or ''). */
const PAGE_ID_SEPARATOR = '\n'

/** The base64url digest of `data` (sha256 unless told), in one call: no Hash object on the hot path. */
export function digest (data: string | Buffer, algorithm = 'sha256'): string {
  return hash(algorithm, data, 'base64url')
}

/**
 * Joins the prefix and a logical key. Keys whose bytes would pass MAX_KEY_BYTES keep a readable head and end in the
 * sha256 of the whole logical key, so two different long keys never share a store key.
 */
export function toStoreKey (prefix: string, key: string): string {
  if (typeof key !== 'string' || key.length === 0) {
    throw new FST_CACHE_INVALID_KEY(`expected a non-empty string, got ${typeof key === 'string' ? 'an empty string' : typeof key}`)
  }
  const full = prefix + key
  if (full.length <= MAX_KEY_BYTES / 3 || Buffer.byteLength(full) <= MAX_KEY_BYTES) return full
  const tail = HASH_MARK + digest(key)
  const budget = MAX_KEY_BYTES - Buffer.byteLength(prefix) - tail.length
  // Cut on a character boundary: a lone surrogate would not survive the trip to Redis and back.
  let head = ''
  let bytes = 0
  for (const char of key) {
    const size = Buffer.byteLength(char)
    if (bytes + size > budget) break
    head += char
    bytes += size
  }
  return prefix + head + tail
}

/** Tags name tag indexes: non-empty strings. The one check of a tag list, wherever tags come from. */
export function isTagList (value: unknown): value is readonly string[] {
  return Array.isArray(value) && value.every((tag) => typeof tag === 'string' && tag.length > 0)
}

/** The logical key of a page path: `view/` + the path, so `/` is `view//` and `/post/7` is `view//post/7`. */
export function pagePathKey (path: string): string {
  return PAGE_NAMESPACE + path
}

/** One variant of one key, as L1, the flights and the lookups name it. */
export function pageId (storeKey: string, variant: string): string {
  return storeKey + PAGE_ID_SEPARATOR + variant
}

/** Where a plain value (`get`, `set`, `wrap`) sits in L1: a variant no page has (pages' are base64url, or ''). */
const VALUE_VARIANT = ' value'

/** A plain value's id in L1; a memoized value's is its `pageId`. Dropped with its key, like a page's variants. */
export function valueId (storeKey: string): string {
  return pageId(storeKey, VALUE_VARIANT)
}

/** Whether `id` is a variant of `storeKey`. */
export function isVariantOf (id: string, storeKey: string): boolean {
  return id.length > storeKey.length && id.charCodeAt(storeKey.length) === 10 && id.startsWith(storeKey)
}

/** Every name the plugin writes under its prefix. */
export class Keyspace {
  readonly prefix: string
  /** Where the tag indexes live, for the sweep that lists them. */
  readonly tagIndexPrefix: string
  readonly busChannel: string
  /** What `health()` reads from a store that has no ping of its own; never written. */
  readonly healthKey: string

  constructor (prefix: string) {
    this.prefix = prefix
    this.tagIndexPrefix = prefix + TAG_NAMESPACE
    this.busChannel = prefix + BUS_NAME
    this.healthKey = prefix + HEALTH_NAME
  }

  /** A key as the API takes it, in the store. */
  storeKey (key: string): string {
    return toStoreKey(this.prefix, key)
  }

  /** The index of a tag: a field key whose fields are the store keys carrying it. */
  tagKey (tag: string): string {
    return toStoreKey(this.prefix, TAG_NAMESPACE + tag)
  }

  memoizeKey (name: string): string {
    return toStoreKey(this.prefix, MEMOIZE_NAMESPACE + name)
  }

  /** A store key as the API shows it: without the prefix. */
  logical (storeKey: string): string {
    return storeKey.slice(this.prefix.length)
  }

  isInternal (logicalKey: string): boolean {
    return logicalKey.startsWith(INTERNAL_NAMESPACE)
  }
}
