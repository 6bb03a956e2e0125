import { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction, onRequestHookHandler, onSendHookHandler } from 'fastify'
import type { CacheCore, Flight } from './core.js'
import type { FieldRead } from './stores/store.js'
import { framePage, freshForMs, type PageEntry } from './entry.js'
import { requestKey, type RequestKey } from './key.js'
import type { NormalizedRouteOptions } from './options.js'

export const kCacheState = Symbol('fastify-cache.state')

/** Marks a background refresh request; its value must be the process's token. */
export const REVALIDATE_HEADER = 'x-fastify-cache-revalidate'

/** What onRequest leaves for onSend on a request that missed and may store its response. */
interface PendingStore {
  storeKey: string
  variant: string
  flightId: string
  /** Set when this request computes the page for concurrent requests waiting on it. */
  flight: Flight | undefined
  generation: number
  /** The key's version when it was looked up; undefined after a forced update. */
  version: number | undefined
  /** The last good response, still within `grace`: served if the handler fails. */
  stale: PageEntry | undefined
  /** The fleet-wide lock this request holds while it computes the page. */
  lockToken: string | undefined
  /** When the computation began, by the store's clock: a tag invalidated after it keeps the response out. */
  startedAt: number | undefined
}

declare module 'fastify' {
  interface FastifyRequest {
    [kCacheState]: PendingStore | null
  }
}

// Not stored: they describe one connection or one response, or the plugin writes them itself.
const UNSTORED_HEADERS = new Set([
  'set-cookie', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'date', 'age', 'x-cache', 'etag'
])

const EMPTY = Buffer.alloc(0)

function ifNoneMatch (header: string | undefined, etag: string): boolean {
  if (header === undefined) return false
  if (header.trim() === '*') return true
  const bare = etag.startsWith('W/') ? etag.slice(2) : etag
  for (const candidate of header.split(',')) {
    const tag = candidate.trim()
    if ((tag.startsWith('W/') ? tag.slice(2) : tag) === bare) return true
  }
  return false
}

/** The reasons a response may never be stored, read off its headers. */
function storableHeaders (reply: FastifyReply): boolean {
  if (reply.hasHeader('set-cookie')) return false
  const cacheControl = reply.getHeader('cache-control')
  if (cacheControl !== undefined && /\b(?:no-store|private)\b/i.test(String(cacheControl))) return false
  const vary = reply.getHeader('vary')
  return vary === undefined || !String(vary).includes('*')
}

function storedHeaders (reply: FastifyReply): Record<string, string | string[]> {
  const stored: Record<string, string | string[]> = {}
  const headers = reply.getHeaders()
  for (const name in headers) {
    const value = headers[name]
    if (value === undefined || UNSTORED_HEADERS.has(name)) continue
    stored[name] = Array.isArray(value) ? value.map(String) : String(value)
  }
  return stored
}

function isThenable (value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null | undefined)?.then === 'function'
}

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

/** The route-level hooks of one cached route; `route` was normalised once, when the route was added. */
// Never copied into a background refresh: they belong to the visitor, not to the page.
const PRIVATE_REQUEST_HEADERS = new Set([
  'cookie', 'authorization', 'host', 'content-length', 'connection', 'if-none-match', 'if-modified-since', REVALIDATE_HEADER
])

/** The route-level hooks of one cached route; `route` was normalised once, when the route was added. */
export function routeHooks (core: CacheCore, route: NormalizedRouteOptions): {
  onRequest: onRequestHookHandler
  onSend: onSendHookHandler<unknown>
} {
  const maxBodyBytes = core.options.maxBodyBytes

  function bypass (reply: FastifyReply): void {
    core.counters.bypasses++
    reply.header('x-cache', 'BYPASS')
  }

  /** The stored status and headers, with the entry's etag and age. */
  function restore (reply: FastifyReply, entry: PageEntry): void {
    reply.code(entry.status)
    reply.headers(entry.headers)
    reply.header('etag', entry.etag)
    reply.header('age', String(Math.max(0, Math.floor((Date.now() - entry.createdAt) / 1000))))
  }

  function serve (request: FastifyRequest, reply: FastifyReply, entry: PageEntry, label: 'HIT' | 'STALE'): FastifyReply {
    restore(reply, entry)
    reply.header('x-cache', label)
    if (entry.status === 200 && ifNoneMatch(request.headers['if-none-match'], entry.etag)) {
      reply.code(304)
      return reply.send()
    }
    return reply.send(entry.body)
  }

  /**
   * Refreshes a stale page once across the fleet, in the background, through the app itself: an anonymous GET of the
   * same URL with the same headers, minus the visitor's own.
   */
  function revalidate (request: FastifyRequest, storeKey: string, variant: string, flightId: string): void {
    if (core.revalidating.has(flightId) || core.flights.has(flightId)) return
    core.revalidating.add(flightId)
    const headers: Record<string, string | string[]> = {}
    for (const name in request.headers) {
      const value = request.headers[name]
      if (value !== undefined && !PRIVATE_REQUEST_HEADERS.has(name)) headers[name] = value
    }
    headers[REVALIDATE_HEADER] = core.revalidateToken
    const refresh = async (): Promise<void> => {
      const lock = await core.lockPage(storeKey, variant, request.log)
      if (lock.held) return // another process is refreshing it
      try {
        await request.server.inject({ method: 'GET', url: request.url, headers })
      } finally {
        if (lock.token !== undefined) core.unlock(storeKey, variant, lock.token, request.log)
      }
    }
    refresh()
      .catch((err: unknown) => core.warn(request.log, 'revalidate', err, 'fastify-cache: background refresh failed'))
      .finally(() => core.revalidating.delete(flightId))
  }

  function routeThrew (request: FastifyRequest, reply: FastifyReply, err: unknown): void {
    // A throwing `unless`, `key` or `forceUpdate` is the route's bug; the request still gets its page, uncached.
    core.warn(request.log, 'route', err, 'fastify-cache: a route cache option threw; bypassing the cache')
    bypass(reply)
  }

  /**
   * Callback style, so that what can be decided at once is: a bypass, and an L1 hit, answer without a promise.
   * Replying without calling `done` ends the request here (Fastify's "respond to a request from a hook").
   */
  function onRequest (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
    const method = request.method
    if ((method !== 'GET' && method !== 'HEAD') ||
      (!route.allowAuthorization && request.headers.authorization !== undefined)) {
      bypass(reply)
      done()
      return
    }
    let unless: unknown
    try {
      unless = route.unless?.(request, reply)
    } catch (err) {
      routeThrew(request, reply, err)
      done()
      return
    }
    if (isThenable(unless)) {
      proceed(afterUnless(request, reply, unless), done)
      return
    }
    if (unless) {
      bypass(reply)
      done()
      return
    }
    const key = keyOf(request, reply)
    if (key === null) {
      done()
      return
    }
    const force = request.headers[REVALIDATE_HEADER] === core.revalidateToken
    if (!force && route.forceUpdate === undefined && core.l1 !== undefined) {
      const local = core.l1.get(key.storeKey + '\n' + key.variant)
      if (local !== undefined) {
        core.counters.hits++
        core.counters.l1Hits++
        serve(request, reply, local.entry, 'HIT')
        return
      }
    }
    proceed(lookup(request, reply, key, force), done)
  }

  /**
   * Ends onRequest once `step` settles: `done` unless it replied (a reply sent from the hook ends the request there).
   * A function, not a closure made per request: a hit's hook allocates nothing it can do without.
   */
  async function proceed (step: Promise<FastifyReply | undefined>, done: HookHandlerDoneFunction): Promise<void> {
    let sent: FastifyReply | undefined
    try {
      sent = await step
    /* c8 ignore start */
    } catch (err) {
      // A safety net, which no test reaches: every store call on the way fails open, and a route option that throws is
      // caught where it runs. Should a lookup reject all the same, the request gets Fastify's 500 instead of hanging.
      done(err as Error)
      return
    }
    /* c8 ignore stop */
    if (sent === undefined) done()
  }

  /** The request's key, or null when it bypasses the cache (marked so here, and logged if the route's `key` threw). */
  function keyOf (request: FastifyRequest, reply: FastifyReply): RequestKey | null {
    try {
      const key = requestKey(request, route, core.prefix)
      if (key === null) bypass(reply)
      return key
    } catch (err) {
      routeThrew(request, reply, err)
      return null
    }
  }

  /** An `unless` that answered with a promise: the key is computed only for requests it lets through. */
  async function afterUnless (request: FastifyRequest, reply: FastifyReply, unless: PromiseLike<unknown>): Promise<FastifyReply | undefined> {
    try {
      if (await unless) {
        bypass(reply)
        return
      }
    } catch (err) {
      routeThrew(request, reply, err)
      return
    }
    const key = keyOf(request, reply)
    if (key === null) return
    return await lookup(request, reply, key, request.headers[REVALIDATE_HEADER] === core.revalidateToken)
  }

  async function lookup (
    request: FastifyRequest, reply: FastifyReply, key: RequestKey, forced: boolean
  ): Promise<FastifyReply | undefined> {
    const method = request.method
    let force = forced
    try {
      if (!force && route.forceUpdate !== undefined) force = await route.forceUpdate(request)
    } catch (err) {
      routeThrew(request, reply, err)
      return
    }

    const flightId = key.storeKey + '\n' + key.variant
    // Taken before the lookup: a purge from here on keeps this request's response out of the cache.
    const generation = core.generation
    let version: number | undefined
    let stale: PageEntry | undefined
    // False when the lookup failed or timed out: the store is not asked again for a lock or the time.
    let storeAnswered = true
    // A GET that may store its response locks a missing page fleet-wide in the lookup's round trip.
    const fleet = core.options.singleFlight === 'fleet' && method === 'GET' && key.storable
    let lock: FieldRead['lock']
    let lockToken: string | undefined
    if (!force) {
      const local = core.l1?.get(flightId)
      if (local !== undefined) {
        core.counters.hits++
        core.counters.l1Hits++
        return serve(request, reply, local.entry, 'HIT')
      }
      const read = await core.lookupPage(key.storeKey, key.variant, request.log, fleet)
      storeAnswered = read !== undefined
      if (read?.foreign === true) core.foreign(request.log)
      version = read?.version
      lock = read?.lock
      if (lock === 'taken') {
        lockToken = core.claimLock(read as FieldRead)
        // Requests that shared this lookup wait for the one that claimed its lock, here or on the flight below.
        if (lockToken === undefined) lock = 'held'
        else if (core.flights.has(flightId)) {
          core.unlock(key.storeKey, key.variant, lockToken, request.log)
          lockToken = undefined
        }
      }
      const entry = read?.value === undefined ? undefined : core.readPage(read.value, request.log)
      if (entry !== undefined) {
        const freshMs = freshForMs(entry, Date.now())
        if (freshMs > 0) {
          core.counters.hits++
          // Not when a purge ran during the lookup: the entry may be what it removed. (`read` is set: the entry is its value.)
          if (generation === core.generation) core.l1?.set(flightId, entry, (read as FieldRead).version)
          return serve(request, reply, entry, 'HIT')
        }
        if (-freshMs < route.staleWhileRevalidateMs) {
          core.counters.stale++
          revalidate(request, key.storeKey, key.variant, flightId)
          return serve(request, reply, entry, 'STALE')
        }
        if (-freshMs < route.graceMs) stale = entry
      }
      let flight = core.flights.get(flightId)
      while (flight !== undefined) {
        const shared = await core.awaitFlight(flight)
        if (shared !== undefined) {
          core.counters.hits++
          core.counters.coalesced++
          return serve(request, reply, shared, 'HIT')
        }
        if (flight.failed && stale !== undefined) {
          core.counters.stale++
          return serve(request, reply, stale, 'STALE')
        }
        // A leader that failed hands over to one new leader; an uncacheable or timed-out one frees everyone.
        const next = core.flights.get(flightId)
        if (!flight.failed || next === flight) break
        flight = next
      }
    }
    // HEAD never writes: its body is dropped before onSend sees it. A request with unkeyed query parameters
    // may read the keyed variant but never write it, so it cannot poison it.
    if (method !== 'GET' || !key.storable) {
      core.counters.misses++
      reply.header('x-cache', 'BYPASS')
      return
    }
    const flight = core.flights.has(flightId) ? undefined : core.startFlight(flightId)
    // Tagged pages note when they began, by the store's clock, alongside the lock when there is one.
    const clock = route.tags === undefined || !storeAnswered ? undefined : core.storeNow(request.log)
    // (A lock claimed above is held only when no flight existed, and nothing awaited since: this request starts it.)
    if (flight !== undefined && fleet && lockToken === undefined && storeAnswered && lock !== undefined) {
      // Another process computes it ('held'), or a stale page needs a new computation ('free'): take the lock.
      const taken = lock === 'held' ? { held: true } : await core.lockPage(key.storeKey, key.variant, request.log)
      lockToken = taken.token
      if (taken.held) {
        const waited = await core.awaitFleet(key.storeKey, key.variant, request.log)
        if (waited.entry !== undefined) {
          core.counters.hits++
          core.counters.coalesced++
          core.endFlight(flightId, flight, waited.entry, false)
          return serve(request, reply, waited.entry, 'HIT')
        }
        lockToken = waited.token
        // A lock taken over was read with the version of now: the computation starts after that read.
        if (waited.version !== undefined) version = waited.version
      }
    }
    const startedAt = clock === undefined ? undefined : await clock
    core.counters.misses++
    request[kCacheState] = {
      storeKey: key.storeKey,
      variant: key.variant,
      flightId,
      flight,
      generation,
      version,
      stale,
      lockToken,
      startedAt
    }
  }

  async function capture (request: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<{
    payload: unknown
    /** The entry, and its bytes as stored. */
    stored?: { entry: PageEntry, bytes: Buffer }
  }> {
    if (!route.statusCodes.has(reply.statusCode) || !storableHeaders(reply)) return { payload }
    let body = bodyOf(payload)
    if (body === undefined) {
      if (!isNodeStream(payload)) return { payload } // a web stream or a Response: sent as is, not stored
      const buffered = await bufferStream(payload, maxBodyBytes)
      if (!Buffer.isBuffer(buffered)) return { payload: buffered }
      body = buffered
    }
    const size = typeof body === 'string' ? Buffer.byteLength(body) : body.length
    if (size > maxBodyBytes) return { payload: body }
    try {
      if (route.filter !== undefined) {
        if (typeof body === 'string') body = Buffer.from(body) // the filter is given bytes
        if (!route.filter(request, reply, body)) return { payload: body }
      }
      const tags = typeof route.tags === 'function' ? route.tags(request, reply) : route.tags ?? []
      const handlerEtag = reply.getHeader('etag')
      const meta = {
        status: reply.statusCode,
        headers: storedHeaders(reply),
        createdAt: Date.now(),
        ttlMs: route.ttlMs,
        staleMs: Math.max(route.staleWhileRevalidateMs, route.graceMs),
        tags
      }
      // Without the handler's own etag, one is computed from the body as framed.
      const framed = framePage(typeof handlerEtag === 'string' ? { ...meta, etag: handlerEtag } : meta, body, size)
      const entry: PageEntry = { ...meta, etag: framed.etag, body: framed.body }
      return { payload: framed.body, stored: { entry, bytes: framed.bytes } }
    } catch (err) {
      core.warn(request.log, 'route', err, 'fastify-cache: a route cache option threw; response not stored')
      return { payload: body }
    }
  }

  /** Grace: the handler failed, so the last good response goes out instead, marked STALE. */
  function serveGrace (request: FastifyRequest, reply: FastifyReply, stale: PageEntry): Buffer {
    core.counters.stale++
    request.log.warn({ statusCode: reply.statusCode, url: request.url },
      'fastify-cache: the handler failed; serving the last good response within grace')
    for (const name of Object.keys(reply.getHeaders())) reply.removeHeader(name)
    restore(reply, stale)
    return stale.body
  }

  /** Callback style, so that a response with nothing to store (a hit, a bypass) passes through without a promise. */
  function onSend (request: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: Error | null, payload?: unknown) => void): void {
    const pending = request[kCacheState]
    if (pending === null) {
      done(null, payload)
      return
    }
    request[kCacheState] = null
    store(request, reply, payload, pending).then((sent) => done(null, sent), done)
  }

  async function store (request: FastifyRequest, reply: FastifyReply, payload: unknown, pending: PendingStore): Promise<unknown> {
    const failed = reply.statusCode >= 500
    let entry: PageEntry | undefined
    let label = 'BYPASS'
    try {
      if (pending.stale !== undefined && failed) {
        label = 'STALE'
        return serveGrace(request, reply, pending.stale)
      }
      const captured = await capture(request, reply, payload)
      if (captured.stored !== undefined) {
        const { entry: stored, bytes } = captured.stored
        entry = stored
        label = 'MISS'
        reply.header('etag', stored.etag)
        // A delete or clear ran while this response was computed: it may predate the purge, so it is not kept.
        if (pending.generation === core.generation) {
          const written = core.writeVariant(pending.storeKey, pending.variant, bytes,
            stored.ttlMs + stored.staleMs, stored.tags, pending.version, pending.startedAt, request.log, pending.lockToken)
          pending.lockToken = undefined
          if (core.l1 !== undefined) {
            // L1 keeps only what the store accepted, and nothing a purge has overtaken meanwhile.
            const l1 = core.l1
            written.then((ok) => { if (ok && pending.generation === core.generation) l1.set(pending.flightId, stored, pending.version ?? 0) })
              .catch(() => {})
          }
        }
      }
      return captured.payload
    } finally {
      reply.header('x-cache', label)
      if (pending.flight !== undefined) {
        core.endFlight(pending.flightId, pending.flight, entry, failed)
      }
      // Not stored: let the others compute it. (A write releases the lock itself, in the same step.)
      if (pending.lockToken !== undefined) core.unlock(pending.storeKey, pending.variant, pending.lockToken, request.log)
    }
  }

  return { onRequest, onSend }
}
