import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { storeMiss } from './capture.js'
import type { CacheEngine } from './engine.js'
import { requestMayUseCache } from './http-semantics.js'
import { requestKey, type RequestKey } from './key.js'
import { missOf, PageLookup, type Miss, type Outcome } from './lookup.js'
import type { NormalizedRouteOptions } from './options.js'
import { isRefresh, refreshInBackground } from './refresh.js'
import { RefreshAhead } from './refresh-ahead.js'
import type { Forward } from './cache-status.js'
import { freshForMs } from './entry.js'
import { mark, serveEntry } from './serve.js'
import { endCompute, startCompute, traceLookup } from './tracing.js'

export const kCacheMiss = Symbol('fastify-cache.miss')

/** A request that missed, and the route cache that stores its response (whichever context ends up answering it). */
export interface PendingMiss {
  route: RouteCache
  miss: Miss
}

declare module 'fastify' {
  interface FastifyRequest {
    [kCacheMiss]: PendingMiss | null | undefined
  }
}

function isThenable (value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null | undefined)?.then === 'function'
}

/**
 * The hooks of one cached route, `recv → lookup → hit | stale | miss | pass → deliver`: preHandler decides (bypass,
 * key, lookup) and serves what the cache holds; onSend stores what a miss computed. `route` was normalised once, when
 * the route was added.
 */
export class RouteCache {
  readonly #engine: CacheEngine
  readonly #route: NormalizedRouteOptions
  readonly #lookup: PageLookup
  readonly #refreshAhead: RefreshAhead | undefined

  constructor (engine: CacheEngine, route: NormalizedRouteOptions) {
    this.#engine = engine
    this.#route = route
    this.#lookup = new PageLookup(engine, route)
    this.#refreshAhead = route.refreshAheadBeta === undefined ? undefined : new RefreshAhead(engine, route.refreshAheadBeta)
  }

  /**
   * Callback style, so that what can be decided at once (a bypass, an L1 hit) answers without a promise. Replying
   * without calling `done` ends the request here (Fastify's "respond to a request from a hook").
   */
  readonly preHandler = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void => {
    const method = request.method
    if (method !== 'GET' && method !== 'HEAD') {
      this.#bypass(reply, 'method')
      done()
      return
    }
    if (!requestMayUseCache(request, this.#route.allowAuthorization)) {
      this.#bypass(reply)
      done()
      return
    }
    let unless: unknown
    try {
      unless = this.#route.unless?.(request, reply)
    } catch (err) {
      this.#routeThrew(request, reply, err)
      done()
      return
    }
    if (isThenable(unless)) {
      this.#proceed(this.#afterUnless(request, reply, unless), done)
      return
    }
    if (unless) {
      this.#bypass(reply)
      done()
      return
    }
    const key = this.#keyOf(request, reply)
    if (key === null) {
      done()
      return
    }
    const force = isRefresh(request, this.#engine)
    const l1Checked = !force && this.#route.forceUpdate === undefined
    if (l1Checked) {
      const local = this.#lookup.fromL1(key, request)
      if (local !== undefined) {
        this.#serve(request, reply, key, { kind: 'hit', entry: local, from: 'l1' })
        return
      }
    }
    this.#proceed(this.#look(request, reply, key, force, l1Checked), done)
  }

  /** A response that missed: stored (or not) here, then sent. */
  readonly onSend = (request: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: Error | null, payload?: unknown) => void): void => {
    const { miss } = request[kCacheMiss] as PendingMiss
    request[kCacheMiss] = null
    endCompute(this.#engine.observers, miss.compute)
    storeMiss(this.#engine, this.#route, request, reply, payload, miss).then((sent) => done(null, sent), done)
  }

  /** Ends preHandler once `step` settles: `done`, unless it replied. */
  async #proceed (step: Promise<FastifyReply | undefined>, done: HookHandlerDoneFunction): Promise<void> {
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

  /** An `unless` that answered with a promise: the key is computed only for requests it lets through. */
  async #afterUnless (request: FastifyRequest, reply: FastifyReply, unless: PromiseLike<unknown>): Promise<FastifyReply | undefined> {
    try {
      if (await unless) {
        this.#bypass(reply)
        return
      }
    } catch (err) {
      this.#routeThrew(request, reply, err)
      return
    }
    const key = this.#keyOf(request, reply)
    if (key === null) return
    return await this.#look(request, reply, key, isRefresh(request, this.#engine))
  }

  /** `l1Checked`: preHandler already looked in L1 (and missed), so the lookup does not look again. */
  async #look (
    request: FastifyRequest, reply: FastifyReply, key: RequestKey, refresh: boolean, l1Checked = false
  ): Promise<FastifyReply | undefined> {
    let force = refresh
    try {
      if (!force && this.#route.forceUpdate !== undefined) force = await this.#route.forceUpdate(request)
    } catch (err) {
      this.#routeThrew(request, reply, err)
      return
    }
    return this.#serve(request, reply, key,
      await traceLookup(this.#engine.observers, request, key, () => this.#lookup.lookup(request, key, force, l1Checked)))
  }

  /** Acts on an outcome: serves a hit or a stale page, or lets the handler run. */
  #serve (
    request: FastifyRequest, reply: FastifyReply, key: RequestKey, outcome: Outcome
  ): FastifyReply | Promise<FastifyReply> | undefined {
    const engine = this.#engine
    switch (outcome.kind) {
      case 'hit':
        // A hit that waited on another request's computation was, for this request, a miss that collapsed.
        mark(reply, engine, outcome.from === 'coalesced'
          ? { label: 'HIT', from: 'coalesced', fwd: missOf(key) }
          : { label: 'HIT', from: outcome.from, freshMs: freshForMs(outcome.entry, Date.now()) })
        this.#refreshAhead?.onHit(request, key, outcome.entry)
        return serveEntry(request, reply, engine.edge?.tagged(reply, key.storeKey, outcome.entry) ?? outcome.entry, engine.l1)
      case 'stale':
        if (outcome.refresh) refreshInBackground(engine, request, key)
        mark(reply, engine, { label: 'STALE', fwd: 'stale', freshMs: freshForMs(outcome.entry, Date.now()) })
        return serveEntry(request, reply, engine.edge?.tagged(reply, key.storeKey, outcome.entry) ?? outcome.entry)
      case 'pass':
        mark(reply, engine, { label: 'BYPASS', fwd: missOf(key) })
        return undefined
      case 'miss':
        // What the reply carries now was set for this request by the hooks before this one: not the route's to store.
        outcome.miss.atLookup = reply.getHeaders()
        request[kCacheMiss] = { route: this, miss: outcome.miss }
        // For metrics and traces, should another context answer (callNotFound).
        outcome.miss.route = request.routeOptions.url
        outcome.miss.compute = startCompute(engine.observers, request, key)
        return undefined
    }
  }

  /** The request's key, or null when it bypasses the cache (marked so here, and logged if the route's `key` threw). */
  #keyOf (request: FastifyRequest, reply: FastifyReply): RequestKey | null {
    try {
      const key = requestKey(request, this.#route, this.#engine.keyspace.prefix)
      if (key === null) this.#bypass(reply)
      return key
    } catch (err) {
      this.#routeThrew(request, reply, err)
      return null
    }
  }

  #bypass (reply: FastifyReply, fwd: Forward = 'bypass'): void {
    mark(reply, this.#engine, { label: 'BYPASS', fwd })
  }

  /** A throwing `unless`, `key` or `forceUpdate` is the route's bug; the request still gets its page, uncached. */
  #routeThrew (request: FastifyRequest, reply: FastifyReply, err: unknown): void {
    this.#engine.failOpen.warn(request.log, 'route', err, 'fastify-cache: a route cache option threw; bypassing the cache')
    this.#bypass(reply)
  }
}
