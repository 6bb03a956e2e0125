import type { FastifyReply, FastifyRequest } from 'fastify'
import type { PageEntry } from './entry.js'
import { etagFor, identityOf, negotiateCoding, type Coding } from './encodings.js'
import { ifNoneMatch, type HeaderSnapshot } from './http-semantics.js'
import { varyNames } from './response-vary.js'
import { cacheStatusOf, type CacheEvent } from './cache-status.js'
import type { NormalizedOptions } from './options.js'
import type { CacheCounters } from './stats.js'
import type { LocalTier } from './l1.js'

/**
 * Marks a response with what happened to it (`x-cache`, `cache-status`, each unless turned off) and counts it: every
 * response of a cached route is marked, and counted under its `x-cache`, exactly once.
 */
export function mark (
  reply: FastifyReply, engine: { counters: CacheCounters, options: NormalizedOptions }, event: CacheEvent,
  route?: string
): void {
  if (engine.options.xCache) reply.header('x-cache', event.label)
  if (engine.options.cacheStatus) reply.header('cache-status', cacheStatusOf(event))
  const counters = engine.counters
  if (event.label === 'HIT') counters.hit(event.from)
  else if (event.label === 'MISS') counters.miss()
  else if (event.label === 'STALE') counters.stale()
  else counters.bypass()
  // Fastify builds `routeOptions` anew on each read: only when someone listens.
  if (counters.observed) counters.response({ route: route ?? reply.request.routeOptions.url as string, label: event.label, from: event.from })
}

/**
 * The stored status and headers, with the representation's etag and coding, and the entry's age. The stored headers
 * are those the route made (see `storedHeaders`): what other plugins set for this request before the lookup stays.
 */
export function restore (reply: FastifyReply, entry: PageEntry, coding: Coding | undefined): void {
  reply.code(entry.status)
  const headers = entry.headers
  for (const name in headers) {
    if (name === 'vary') continue
    reply.header(name, headers[name])
  }
  const vary = mergedVary(reply.getHeader('vary'), entry)
  if (vary !== '') reply.header('vary', vary)
  if (coding !== undefined) reply.header('content-encoding', coding)
  reply.header('etag', etagFor(entry.etag, coding))
  reply.header('age', String(Math.max(0, Math.floor((Date.now() - entry.createdAt) / 1000))))
}

/** An entry's own Vary as served when the reply has none yet (the common case): made once per entry, not per hit. */
const entryVary = new WeakMap<PageEntry, string>()

/** The reply's own Vary names, the stored ones, and accept-encoding for a page stored compressed. */
function mergedVary (current: unknown, entry: PageEntry): string {
  if (current !== undefined) return joinedVary(current, entry)
  let vary = entryVary.get(entry)
  if (vary === undefined) {
    vary = joinedVary(undefined, entry)
    entryVary.set(entry, vary)
  }
  return vary
}

function joinedVary (current: unknown, entry: PageEntry): string {
  const names = new Set([...varyNames(current), ...varyNames(entry.headers.vary)])
  if (entry.encoded !== undefined) names.add('accept-encoding')
  return [...names].join(', ')
}

/** The coding a request gets for an entry: one of those stored, or identity. */
function codingFor (request: FastifyRequest, entry: PageEntry): Coding | undefined {
  return entry.encoded === undefined ? undefined : negotiateCoding(request.headers['accept-encoding'], entry.encoded)
}

/**
 * The bytes of a representation: stored as they are sent, but for identity of a page stored compressed, gunzipped
 * (once per page while L1 holds it).
 */
function bodyFor (entry: PageEntry, coding: Coding | undefined, l1?: LocalTier): Buffer | Promise<Buffer> {
  const encoded = entry.encoded
  if (encoded === undefined) return entry.body
  if (coding !== undefined) return encoded[coding] as Buffer
  const kept = l1?.keptIdentity(encoded)
  if (kept !== undefined) return kept
  const identity = identityOf(encoded)
  return l1 === undefined ? identity : identity.then((bytes) => { l1.keepIdentity(encoded, bytes); return bytes })
}

/**
 * Answers from the cache, from the hook: a 304 when the client holds this representation already. `l1`: where the
 * identity bytes of a page it holds are kept once made.
 */
export function serveEntry (
  request: FastifyRequest, reply: FastifyReply, entry: PageEntry, l1?: LocalTier
): FastifyReply | Promise<FastifyReply> {
  const coding = codingFor(request, entry)
  restore(reply, entry, coding)
  if (entry.status === 200 && ifNoneMatch(request.headers['if-none-match'], etagFor(entry.etag, coding))) {
    reply.code(304)
    return reply.send()
  }
  const body = bodyFor(entry, coding, l1)
  // A compressed body planted in the store may not decode: that request gets an error, not garbage.
  return Buffer.isBuffer(body) ? reply.send(body) : body.then((bytes) => reply.send(bytes), (err: Error) => reply.send(err))
}

/**
 * Grace: the handler failed, so the last good response goes out instead (from onSend: its body is the payload). The
 * headers the route set for the failure go; those other plugins set for this request (`atLookup`) stay.
 */
export async function serveGrace (
  request: FastifyRequest, reply: FastifyReply, stale: PageEntry, atLookup: HeaderSnapshot
): Promise<Buffer> {
  request.log.warn({ statusCode: reply.statusCode, url: request.url },
    'fastify-cache: the handler failed; serving the last good response within grace')
  for (const name of Object.keys(reply.getHeaders())) {
    if (!(name in atLookup)) reply.removeHeader(name)
  }
  const coding = codingFor(request, stale)
  restore(reply, stale, coding)
  return await bodyFor(stale, coding)
}
