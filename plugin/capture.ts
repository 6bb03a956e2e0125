import { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { CacheEvent } from './cache-status.js'
import type { CacheEngine } from './engine.js'
import { compressBoth, decodeCoding, isCompressible } from './encodings.js'
import { entryTags, entryTtlMs } from './handler-decisions.js'
import { etagOf, frameEncodedPage, framePage, freshForMs, isEntityTag, type PageEntry } from './entry.js'
import { responseIsStorable, storedHeaders } from './http-semantics.js'
import { MAX_VARY_NAMES, routeVaryNames, varyNames, varyOnOf, type VaryOn } from './response-vary.js'
import type { Miss } from './lookup.js'
import type { NormalizedRouteOptions } from './options.js'
import { mark, serveGrace } from './serve.js'
import { traceStore } from './tracing.js'
import { isWarming, reportWarmed } from './warm.js'

const EMPTY = Buffer.alloc(0)

function isNodeStream (payload: unknown): payload is Readable {
  return typeof (payload as Readable | null)?.pipe === 'function'
}

async function * replay (head: Buffer[], rest: AsyncIterator<Buffer | string>): AsyncGenerator<Buffer | string> {
  yield * head
  while (true) {
    const next = await rest.next()
    if (next.done === true) return
    yield next.value
  }
}

/** Buffers a stream up to `maxBytes`. Past that, hands back an equivalent stream and stores nothing. */
async function bufferStream (stream: Readable, maxBytes: number): Promise<Buffer | Readable> {
  const chunks: Buffer[] = []
  let size = 0
  const iterator: AsyncIterator<Buffer | string> = stream[Symbol.asyncIterator]()
  while (true) {
    const next = await iterator.next()
    if (next.done === true) return Buffer.concat(chunks, size)
    const chunk = typeof next.value === 'string' ? Buffer.from(next.value) : next.value
    chunks.push(chunk)
    size += chunk.length
    if (size > maxBytes) return Readable.from(replay(chunks, iterator), { objectMode: false })
  }
}

/** The body as sent: a string stays one until it is framed for the store, so it is encoded once. */
function bodyOf (payload: unknown): Buffer | string | undefined {
  if (typeof payload === 'string' || Buffer.isBuffer(payload)) return payload
  if (payload === null || payload === undefined) return EMPTY
  return undefined
}

interface Captured {
  /** What goes to the client: the payload, or the same bytes read from a stream, or a view of the stored frame. */
  payload: unknown
  /** The entry (its body the identity bytes), and its bytes as stored, or the identity bytes still to be compressed. */
  stored?: { entry: PageEntry, bytes: Buffer, compress: boolean }
}

/**
 * Decides what of a response is stored (the `backend_response` of the cache) and frames it: a storable status and
 * headers, a body of known size within `maxBodyBytes`, passing the route's `filter`.
 */
async function capture (
  engine: CacheEngine, route: NormalizedRouteOptions, request: FastifyRequest, reply: FastifyReply, payload: unknown,
  miss: Miss
): Promise<Captured> {
  if (!route.statusCodes.has(reply.statusCode) || !responseIsStorable(reply)) return { payload }
  const maxBodyBytes = engine.options.maxBodyBytes
  let body = bodyOf(payload)
  if (body === undefined) {
    if (!isNodeStream(payload)) return { payload } // a web stream or a Response: sent as is, not stored
    const buffered = await bufferStream(payload, maxBodyBytes)
    if (!Buffer.isBuffer(buffered)) return { payload: buffered }
    body = buffered
  }
  const size = typeof body === 'string' ? Buffer.byteLength(body) : body.length
  if (size > maxBodyBytes) return { payload: body }
  const coding = reply.getHeader('content-encoding')
  if (coding !== undefined && coding !== 'identity') {
    // Compressed by the handler (`reply.compress`, a file served pre-compressed): stored as its identity bytes, and
    // this client gets the bytes it was sent.
    const identity = await decodeCoding(String(coding), Buffer.from(body)).catch(() => undefined)
    if (identity === undefined || identity.length > maxBodyBytes) return { payload: body }
    const captured = guardRoute(engine, request, identity, () => frameResponse(engine, route, request, reply, identity, miss))
    return { ...captured, payload: body }
  }
  const known = body
  return guardRoute(engine, request, known, () => frameResponse(engine, route, request, reply, known, miss))
}

/** A route option that throws (`filter`, `tags`) is the route's bug: its response goes out, not stored. */
function guardRoute (engine: CacheEngine, request: FastifyRequest, body: Buffer | string, frameIt: () => Captured): Captured {
  try {
    return frameIt()
  } catch (err) {
    engine.failOpen.warn(request.log, 'route', err, 'fastify-cache: a route cache option threw; response not stored')
    return { payload: body }
  }
}

/** The entry of a response whose body is known: the route's `filter` and `tags` have their say. */
function frameResponse (
  engine: CacheEngine, route: NormalizedRouteOptions, request: FastifyRequest, reply: FastifyReply,
  body: Buffer | string, miss: Miss
): Captured {
  if (route.filter !== undefined) {
    if (typeof body === 'string') body = Buffer.from(body) // the filter is given bytes
    if (!route.filter(request, reply, body)) return { payload: body }
  }
  const varyOn = responseVaryOf(reply, request, miss)
  if (varyOn === null) return { payload: body }
  // The handler's reply.cacheTtl/cacheTags, or the response's cache-control, over the route's (0: not stored).
  const ttlMs = entryTtlMs(route, reply)
  if (ttlMs === 0) return { payload: body }
  const handlerEtag = reply.getHeader('etag')
  const createdAt = Date.now()
  const meta: Omit<PageEntry, 'body' | 'etag'> = {
    status: reply.statusCode,
    headers: storedHeaders(reply, miss.atLookup),
    createdAt,
    ttlMs,
    staleMs: Math.max(route.staleWhileRevalidateMs, route.graceMs),
    tags: entryTags(route, request, reply),
    // refresh-ahead's delta (a clock stepped back reads as 0)
    computeMs: Math.max(0, createdAt - miss.computeFrom)
  }
  if (varyOn !== undefined) meta.varyOn = varyOn
  const size = typeof body === 'string' ? Buffer.byteLength(body) : body.length
  const etag = isEntityTag(handlerEtag) ? handlerEtag : undefined
  if (size >= engine.options.compressAbove && isCompressible(meta.headers['content-type'])) {
    // Stored compressed, later: this client gets the identity bytes now, as the handler made them. The resource has
    // representations by coding from now on, for every response of it (this one, those waiting on it, hits).
    const identity = typeof body === 'string' ? Buffer.from(body) : body
    meta.headers.vary = withAcceptEncoding(meta.headers.vary)
    reply.header('vary', withAcceptEncoding(reply.getHeader('vary')))
    const entry: PageEntry = { ...meta, etag: etag ?? etagOf(identity), body: identity }
    return { payload: identity, stored: { entry, bytes: identity, compress: true } }
  }
  // Without a well-formed etag of the handler's own, one is computed from the body as framed.
  const framed = framePage(etag === undefined ? meta : { ...meta, etag }, body, size)
  const entry: PageEntry = { ...meta, etag: framed.etag, body: framed.body }
  return { payload: framed.body, stored: { entry, bytes: framed.bytes, compress: false } }
}

function withAcceptEncoding (vary: unknown): string {
  return [...new Set([...varyNames(vary), 'accept-encoding'])].join(', ')
}

/**
 * What the response's own Vary keys (RFC 9111 §4.1): undefined when nothing, null when too much to key. Written at a
 * variant of its own when the lookup found another response's at the base one.
 */
function responseVaryOf (reply: FastifyReply, request: FastifyRequest, miss: Miss): VaryOn | undefined | null {
  const names = routeVaryNames(reply.getHeader('vary'), miss.atLookup.vary)
  if (names.length === 0) return undefined
  return names.length > MAX_VARY_NAMES ? null : varyOnOf(names, request)
}

/**
 * The page as stored compressed. Both codings are made once per miss, on zlib's threads, before its response goes
 * out: the page is then stored when its first response is sent, as any other (purges and readers can count on it).
 */
async function compressed (page: PageEntry): Promise<{ entry: PageEntry, bytes: Buffer }> {
  const encoded = await compressBoth(page.body)
  const { body: _identity, ...meta } = page
  return { entry: { ...meta, body: EMPTY, encoded }, bytes: frameEncodedPage(meta, encoded) }
}

/**
 * onSend of a request that missed: serves grace if the handler failed, otherwise stores what may be stored, then
 * hands the page to the requests waiting on it and releases its lock.
 */
export async function storeMiss (
  engine: CacheEngine, route: NormalizedRouteOptions, request: FastifyRequest, reply: FastifyReply, payload: unknown,
  miss: Miss
): Promise<unknown> {
  const failed = reply.statusCode >= 500
  let entry: PageEntry | undefined
  let event: CacheEvent = { label: 'BYPASS', fwd: miss.fwd }
  try {
    if (miss.stale !== undefined && failed) {
      event = { label: 'STALE', fwd: 'stale', freshMs: freshForMs(miss.stale, Date.now()) }
      return await serveGrace(request, reply, miss.stale, miss.atLookup)
    }
    const captured = await capture(engine, route, request, reply, payload, miss)
    if (captured.stored !== undefined) {
      const stored = captured.stored.compress ? await compressed(captured.stored.entry) : captured.stored
      entry = stored.entry
      event = { label: 'MISS', fwd: miss.fwd, stored: true }
      reply.header('etag', entry.etag)
      const written = write(engine, request, miss, entry, stored.bytes)
      if (isWarming(request, engine)) await reportWarmed(reply, written, engine.options.operationTimeoutMs)
    }
    return captured.payload
  } finally {
    mark(reply, engine, event, miss.route)
    engine.edge?.mark(reply, miss.storeKey, event.label === 'BYPASS' ? undefined : entry ?? miss.stale)
    if (miss.flight !== undefined) engine.flights.end(miss.id, miss.flight, entry, failed)
    // Not stored: let the others compute it. (A write releases the lock itself, in the same step.)
    if (miss.lockToken !== undefined) engine.locks.unlock(miss.storeKey, miss.variant, miss.lockToken, request.log)
  }
}

/**
 * Writes the page, unless a purge ran while it was computed (it may predate the purge); L1 keeps what the store took.
 * The write carries the miss's lock, which it releases. Resolves whether the store took it.
 */
function write (engine: CacheEngine, request: FastifyRequest, miss: Miss, entry: PageEntry, bytes: Buffer): Promise<boolean> {
  if (miss.generation !== engine.invalidation.generation) return Promise.resolve(false)
  const written = traceStore(miss, async () => await engine.pages.write(miss.storeKey, miss.variant, bytes, {
    ttlMs: entry.ttlMs + entry.staleMs, tags: entry.tags, ifVersion: miss.version, startedAt: miss.startedAt, unlock: miss.lockToken
  }, request.log))
  miss.lockToken = undefined
  const l1 = engine.l1
  if (l1 === undefined) return written
  written.then((ok) => { if (ok && miss.generation === engine.invalidation.generation) l1.set(miss.id, entry, miss.version ?? 0) })
    .catch(() => {})
  return written
}
