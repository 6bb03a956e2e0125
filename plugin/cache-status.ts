/** The `x-cache` values; each response of a cached route carries one, and is counted under it, once. */
export type CacheLabel = 'HIT' | 'MISS' | 'BYPASS' | 'STALE'

/** Why a response did not come from the cache: RFC 9211's `fwd` values that this cache uses. */
export type Forward = 'uri-miss' | 'vary-miss' | 'bypass' | 'method' | 'stale' | 'request'

/** What happened to one response, for `x-cache`, `cache-status` and the counters. */
export interface CacheEvent {
  label: CacheLabel
  /** Where a hit came from: L1 says so in `cache-status` (`detail=l1`). */
  from?: 'store' | 'l1' | 'coalesced'
  fwd?: Forward
  /** Milliseconds of freshness left (negative once stale): `ttl` in whole seconds. */
  freshMs?: number
  /** The response was stored. */
  stored?: boolean
}

/** The cache's name in `cache-status`. */
const CACHE_NAME = 'fastify-cache'

/**
 * RFC 9211's Cache-Status for one response, as a structured-field list member: the cache's name, then `hit` or
 * `fwd=…`, `ttl`, `stored`, `collapsed`, and `detail=l1` for a hit from process memory.
 */
export function cacheStatusOf (event: CacheEvent): string {
  let value = CACHE_NAME
  const collapsed = event.from === 'coalesced'
  if ((event.label === 'HIT' && !collapsed) || event.label === 'STALE') value += '; hit'
  if (event.fwd !== undefined) value += '; fwd=' + event.fwd
  if (event.freshMs !== undefined && !collapsed) value += '; ttl=' + String(Math.floor(event.freshMs / 1000))
  if (event.stored === true) value += '; stored'
  if (collapsed) value += '; collapsed'
  if (event.from === 'l1') value += '; detail=l1'
  return value
}
