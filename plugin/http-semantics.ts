import type { FastifyReply, FastifyRequest } from 'fastify'

/**
 * The HTTP rules of the cache, in one place (RFC 9111): which requests may use it, which responses may be stored,
 * which of their headers are kept, and how a validator matches.
 */

/**
 * Never stored, and never served from storage: they describe one connection or one message (hop-by-hop, framing),
 * belong to one visitor (set-cookie), or the plugin writes them itself.
 */
const UNSTORED_HEADERS = new Set([
  'set-cookie', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer',
  'upgrade', 'proxy-authenticate', 'date', 'age', 'x-cache', 'cache-status', 'etag'
])

/** Response directives after which a shared cache may not serve the response without revalidating it (or at all). */
const UNSTORABLE_DIRECTIVES = /(?:^|,)\s*(?:no-store|private|no-cache|s-maxage\s*=\s*"?0+"?)\s*(?:[,=;]|$)/i

/**
 * Headers that describe the stored bytes themselves: stored even when another plugin set them before the lookup (a
 * CSP must name the nonces the stored page holds, a type must be the stored body's).
 */
const REPRESENTATION_HEADERS = new Set([
  'content-type', 'content-language', 'content-location', 'content-disposition', 'content-security-policy',
  'content-security-policy-report-only', 'last-modified', 'vary'
])

/** A header a stored entry may carry: the plugin never writes one of the others. */
export function isStorableHeader (name: string): boolean {
  return !UNSTORED_HEADERS.has(name)
}

/**
 * Whether the request may read or write the cache: it carries no credentials (unless the route opts in), and does not
 * ask that nothing be stored (`cache-control: no-store`, RFC 9111 §5.2.1.5).
 */
export function requestMayUseCache (request: FastifyRequest, allowAuthorization: boolean): boolean {
  const headers = request.headers
  if (!allowAuthorization && (headers.authorization !== undefined || headers['proxy-authorization'] !== undefined)) {
    return false
  }
  const cacheControl = headers['cache-control']
  return cacheControl === undefined || !/(?:^|,)\s*no-store\s*(?:,|$)/i.test(cacheControl)
}

/**
 * The reasons a response may never be stored, read off its headers: it sets a cookie, says it is private or not to be
 * stored, must be revalidated before each use (`no-cache`, `s-maxage=0`), or varies on everything.
 */
export function responseIsStorable (reply: FastifyReply): boolean {
  if (reply.hasHeader('set-cookie')) return false
  const cacheControl = reply.getHeader('cache-control')
  if (cacheControl !== undefined && UNSTORABLE_DIRECTIVES.test(String(cacheControl))) return false
  const vary = reply.getHeader('vary')
  return vary === undefined || !UNSTORABLE_VARY.test(String(vary))
}

/** Varying on everything, or on who the visitor is: such a response is one visitor's, never stored (RFC 9111 §4.1). */
const UNSTORABLE_VARY = /(?:^|,)\s*(?:\*|cookie|authorization|proxy-authorization)\s*(?:,|$)/i

export type HeaderSnapshot = Record<string, unknown>

function sameValue (a: unknown, b: unknown): boolean {
  return Array.isArray(a) && Array.isArray(b) ? a.join('\n') === b.join('\n') : String(a) === String(b)
}

/**
 * The headers of a response as stored: those the route produced. A header already on the reply when the cache looked
 * (`atLookup`: set by another plugin's earlier hook for this request, such as a rate-limit counter, a request id or
 * CORS for this origin) is this request's, and is left out unless the route changed it, or it describes the bytes.
 */
export function storedHeaders (reply: FastifyReply, atLookup: HeaderSnapshot): Record<string, string | string[]> {
  const stored: Record<string, string | string[]> = {}
  const headers = reply.getHeaders()
  for (const name in headers) {
    const value = headers[name]
    if (value === undefined || UNSTORED_HEADERS.has(name) || name === 'content-encoding') continue
    if (name in atLookup && sameValue(atLookup[name], value) && !REPRESENTATION_HEADERS.has(name)) continue
    stored[name] = Array.isArray(value) ? value.map(String) : String(value)
  }
  return stored
}

/** If-None-Match against an entity tag, with the weak comparison RFC 9110 §13.1.2 prescribes for it. */
export function ifNoneMatch (header: string | undefined, etag: string): boolean {
  if (header === undefined) return false
  if (header.trim() === '*') return true
  const bare = etag.startsWith('W/') ? etag.slice(2) : etag
  for (const candidate of header.split(',')) {
    const tag = candidate.trim()
    if ((tag.startsWith('W/') ? tag.slice(2) : tag) === bare) return true
  }
  return false
}
