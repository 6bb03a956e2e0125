import type { FastifyRequest } from 'fastify'
import { digest, pagePathKey, toStoreKey } from './keyspace.js'
import type { NormalizedRouteOptions } from './options.js'

/** Where a request's response lives: the store key (prefix included) and the variant within it. */
export interface RequestKey {
  /** `prefix + 'view/<path>'` (or the route's `key`), hashed when too long. */
  storeKey: string
  /** '' for the plain page; a hash of the keyed query and `vary` values otherwise. */
  variant: string
  /** False when the request carries query parameters the route does not key: it may read, never write. */
  storable: boolean
}

const UNRESERVED = /^[A-Za-z0-9\-._~]$/

/**
 * Percent-decodes only unreserved characters and upper-cases the other escapes (RFC 3986 section 6.2.2), so
 * `/post/%31` and `/post/1` share a key while `/a%2Fb` and `/a/b` never do.
 */
export function normalizePath (path: string): string {
  if (!path.includes('%')) return path
  return path.replace(/%[0-9A-Fa-f]{2}/g, (escape) => {
    const char = String.fromCharCode(parseInt(escape.slice(1), 16))
    return UNRESERVED.test(char) ? char : escape.toUpperCase()
  })
}

/** The Flask-Caching page key: `view/` followed by the request path. */
export function pageKey (url: string): string {
  const queryAt = url.indexOf('?')
  return pagePathKey(normalizePath(queryAt === -1 ? url : url.slice(0, queryAt)))
}

/**
 * The canonical form of the keyed part of a query string: pairs sorted by name (stably, so repeated parameters keep
 * their order), decoded and re-encoded. Returns `extra: true` when unkeyed parameters were dropped.
 */
export function canonicalQuery (rawQuery: string, keyed: 'all' | ReadonlySet<string>): { query: string, extra: boolean } {
  // The '&' keeps URLSearchParams from dropping a leading '?', which Fastify's parser keeps as part of a name.
  const params = new URLSearchParams('&' + rawQuery)
  const canonical = params.toString()
  // Malformed escapes (`%%00`) and invalid UTF-8 (`%FF`, read as U+FFFD) decode alike from different bytes, while
  // Fastify's parser may keep them apart: key such a query by its raw bytes, and never let it write.
  if (canonical.includes('%') && !strictlyDecodable(rawQuery)) return { query: '\u0000raw\u0000' + rawQuery, extra: true }
  let extra = false
  if (keyed !== 'all') {
    for (const name of new Set(params.keys())) {
      if (!keyed.has(name)) {
        params.delete(name)
        extra = true
      }
    }
  }
  params.sort()
  return { query: params.toString(), extra }
}

function strictlyDecodable (rawQuery: string): boolean {
  try {
    decodeURIComponent(rawQuery.replace(/\+/g, ' '))
    return true
  } catch {
    return false
  }
}

/** The variant of a request: '' when nothing but the path is keyed. */
export function variantOf (query: string, varyValues: ReadonlyArray<string | undefined>): string {
  if (query === '' && varyValues.length === 0) return ''
  let material = 'q=' + query
  for (const value of varyValues) {
    // A missing header and an empty one are different variants.
    material += value === undefined ? '\n-' : '\n=' + value
  }
  return digest(material)
}

function headerValue (value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value
}

/**
 * The keyed query as the route reads it, when the route has a querystring schema: the query Fastify validated and
 * coerced before the cache looked (the lookup runs in preHandler), in canonical form. undefined without a schema.
 */
function parsedQuery (request: FastifyRequest, keyed: 'all' | ReadonlySet<string>, rawQuery: string): string | undefined {
  const validate = typeof request.getValidationFunction === 'function' ? request.getValidationFunction('querystring') : undefined
  if (typeof validate !== 'function') return undefined
  const coerced = request.query as Record<string, unknown>
  const params = new URLSearchParams()
  // Only the names the request sent: defaults the schema fills in are the same for every request, keyed or not.
  for (const name of [...new Set(new URLSearchParams(rawQuery).keys())].sort()) {
    if ((keyed !== 'all' && !keyed.has(name)) || !(name in coerced)) continue
    const value = coerced[name]
    for (const item of Array.isArray(value) ? value : [value]) params.append(name, String(item))
  }
  return params.toString()
}

/**
 * Computes where a request's response lives. Returns null when the request must bypass the cache: it carries a query
 * string on a route that does not key one, or its target is not an origin-form path.
 */
export function requestKey (request: FastifyRequest, route: NormalizedRouteOptions, prefix: string): RequestKey | null {
  const url = request.url
  const queryAt = url.indexOf('?')
  const rawQuery = queryAt === -1 ? '' : url.slice(queryAt + 1)
  let query = ''
  let storable = true
  if (rawQuery !== '') {
    if (route.queryString === undefined) return null
    const canonical = canonicalQuery(rawQuery, route.queryString)
    query = canonical.query
    storable = !canonical.extra
    const parsed = parsedQuery(request, route.queryString, rawQuery)
    if (parsed !== undefined) {
      // Keyed by what the route reads: `?page=01` and `?page=1` are one variant. Only the canonical spelling writes it.
      if (parsed !== query) storable = false
      query = parsed
    }
  }
  const path = queryAt === -1 ? url : url.slice(0, queryAt)
  // Absolute-form targets, `*` and fragments never name a page a visitor asks for: no key is minted for them.
  if (path.charCodeAt(0) !== 47 /* / */ || path.includes('#')) return null
  const canonicalPath = normalizePath(path)
  // Another spelling of a page (`/%61bout`) may read it but not write it: the handler saw the raw URL, and what it
  // rendered from that must not become what visitors of the canonical URL get.
  if (canonicalPath !== path) storable = false
  const base = route.key === undefined
    ? pagePathKey(canonicalPath)
    : typeof route.key === 'string' ? route.key : route.key(request)
  const varyValues = route.vary.map((name) => headerValue(request.headers[name]))
  return { storeKey: toStoreKey(prefix, base), variant: variantOf(query, varyValues), storable }
}
