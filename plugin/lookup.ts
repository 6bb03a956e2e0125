import type { FastifyRequest } from 'fastify'
import type { Forward } from './cache-status.js'
import type { CacheEngine } from './engine.js'
import { freshForMs, type PageEntry } from './entry.js'
import type { RequestKey } from './key.js'
import { pageId } from './keyspace.js'
import type { NormalizedRouteOptions } from './options.js'
import type { Flight } from './single-flight.js'
import { withinSoftTimeout } from './soft-timeout.js'
import type { FieldRead } from './stores/store.js'
import type { HeaderSnapshot } from './http-semantics.js'
import { fits, varyVariant, type VaryOn } from './response-vary.js'
import type { ComputeTrace } from './tracing.js'

/** What a request that missed carries to onSend, where its response may be stored. */
export interface Miss {
  /** Why the handler runs, for `cache-status`. */
  fwd: Forward
  storeKey: string
  variant: string
  id: string
  /** Set when this request computes the page for the requests waiting on it. */
  flight: Flight<PageEntry> | undefined
  /** The purge generation at lookup: a purge since keeps this response out of the cache. */
  generation: number
  /** The key's version when it was looked up; undefined after a forced update. */
  version: number | undefined
  /** The last good response, still within `grace`: served if the handler fails. */
  stale: PageEntry | undefined
  /** The fleet-wide lock this request holds while it computes the page. */
  lockToken: string | undefined
  /** When the computation began, by the store's clock: a tag invalidated after it keeps the response out. */
  startedAt: number | undefined
  /** The reply's headers when the cache looked: other plugins' for this request, never stored. */
  atLookup: HeaderSnapshot
  /** The response's own `Vary` was found on another response at the base variant: it is written at `variant`. */
  followedVary: boolean
  /** When the handler began, by this process's clock: how long it took is stored for refresh-ahead. */
  computeFrom: number
  /** The route pattern: a handler that calls `callNotFound` leaves its route before onSend, not its metrics. */
  route?: string | undefined
  /** The handler run's trace, when someone listens (tracing.ts): started at the miss decision, ended in onSend. */
  compute?: ComputeTrace | undefined
}

/** What to do with a request, as its lookup decided. */
export type Outcome =
  | { kind: 'hit', entry: PageEntry, from: 'l1' | 'store' | 'coalesced' }
  /** Serve the stale page; `refresh`: refresh it in the background (stale-while-revalidate), else it is grace. */
  | { kind: 'stale', entry: PageEntry, refresh: boolean }
  | { kind: 'miss', miss: Miss }
  /** Run the handler and store nothing: a HEAD, or a request that may read the page but not write it. */
  | { kind: 'pass' }

/** A miss of the plain page is `uri-miss`; of a query or `vary` variant, `vary-miss` (the URI's other variants may be stored). */
export function missOf (key: RequestKey): Forward {
  return key.variant === '' ? 'uri-miss' : 'vary-miss'
}

/**
 * What a stored entry is worth now: fresh (`hit`), servable while it is refreshed (`stale`), a fallback should the
 * handler fail (`grace`), or nothing (`miss`).
 */
export function decide (entry: PageEntry | undefined, now: number, route: NormalizedRouteOptions): 'hit' | 'stale' | 'grace' | 'miss' {
  if (entry === undefined) return 'miss'
  const freshMs = freshForMs(entry, now)
  if (freshMs > 0) return 'hit'
  if (-freshMs < route.staleWhileRevalidateMs) return 'stale'
  return -freshMs < route.graceMs ? 'grace' : 'miss'
}

const EMPTY_STATE: Readonly<ReadState> = Object.freeze({ answered: true, version: undefined, lock: undefined, lockToken: undefined, stale: undefined, now: undefined })

/** What the store read left for the rest of the lookup. */
interface ReadState {
  /** False when the read failed or timed out: the store is not asked again for a lock or the time. */
  answered: boolean
  version: number | undefined
  lock: FieldRead['lock']
  lockToken: string | undefined
  stale: PageEntry | undefined
  /** The store's clock at the read, when the read gave it. */
  now: number | undefined
}

/** The lookup of one cached route: L1, then the store, then the computations under way, here and in the fleet. */
export class PageLookup {
  readonly #engine: CacheEngine
  readonly #route: NormalizedRouteOptions

  constructor (engine: CacheEngine, route: NormalizedRouteOptions) {
    this.#engine = engine
    this.#route = route
  }

  /** A fresh page in this process's memory, without a store round trip: the one made for this request's Vary values. */
  fromL1 (key: RequestKey, request: FastifyRequest): PageEntry | undefined {
    const l1 = this.#engine.l1
    const entry = l1?.get(pageId(key.storeKey, key.variant))?.entry
    if (entry === undefined || fits(entry.varyOn, request)) return entry
    const other = l1?.get(pageId(key.storeKey, varyVariant(key.variant, entry.varyOn as VaryOn, request)))?.entry
    return other !== undefined && fits(other.varyOn, request) ? other : undefined
  }

  /**
   * `followed`: this is the second look, in the variant named after the request's values of a stored response's Vary
   * (found at the base variant, made for other values).
   */
  async lookup (request: FastifyRequest, key: RequestKey, force: boolean, l1Checked = false, followed = false): Promise<Outcome> {
    const engine = this.#engine
    const id = pageId(key.storeKey, key.variant)
    // Taken before the lookup: a purge from here on keeps this request's response out of the cache.
    const generation = engine.invalidation.generation
    // A GET that may store its response locks a missing page fleet-wide in the lookup's round trip.
    const fleet = engine.options.singleFlight === 'fleet' && request.method === 'GET' && key.storable
    let state: ReadState = EMPTY_STATE
    if (!force) {
      const local = l1Checked ? undefined : this.fromL1(key, request)
      if (local !== undefined) return { kind: 'hit', entry: local, from: 'l1' }
      const read = await engine.pages.read(key.storeKey, key.variant, request.log, fleet)
      // From here to the start of a flight nothing is awaited, so that requests which shared this read find the
      // flight of the first one and wait on it.
      const decided = this.#afterRead(request, key, id, generation, read, followed)
      if (decided.follow !== undefined) return await this.lookup(request, { ...key, variant: decided.follow }, force, true, true)
      if (decided.outcome !== undefined) return decided.outcome
      state = decided.state
      const softTimeoutMs = this.#route.softTimeoutMs
      if (state.stale !== undefined && softTimeoutMs !== undefined && key.storable) {
        const soft = await withinSoftTimeout(engine, request, key, state.stale, softTimeoutMs)
        if (soft !== undefined) return soft
        state.stale = undefined // purged meanwhile: no fallback
      }
      // Another request of this process computes the page: wait for it and take its page. A leader that failed hands
      // over to one new leader (the first waiter to wake, with nothing awaited before it leads); an uncacheable or
      // timed-out one frees everyone.
      let flight = engine.flights.get(id)
      while (flight !== undefined) {
        const shared = await engine.flights.wait(flight, engine.options.lockTimeoutMs)
        const outcome = this.#afterFlight(flight, shared, state.stale, request)
        if (outcome !== undefined) return outcome
        const next = engine.flights.get(id)
        if (!flight.failed || next === flight) break
        flight = next
      }
    }
    // HEAD never writes: its body is dropped before onSend sees it. A request with unkeyed query parameters may
    // read the keyed variant but never write it, so it cannot poison it.
    if (request.method !== 'GET' || !key.storable) return { kind: 'pass' }
    const fwd = force ? 'request' : followed ? 'vary-miss' : missOf(key)
    return await this.#startMiss(request, key, id, generation, fleet, state, fwd, followed)
  }

  /** What the store read found: a fresh or stale-while-revalidate page is the outcome; otherwise what the miss needs. */
  #afterRead (
    request: FastifyRequest, key: RequestKey, id: string, generation: number, read: FieldRead | undefined, followed: boolean
  ): { outcome?: Outcome, state: ReadState, follow?: string } {
    const engine = this.#engine
    const log = request.log
    if (read?.foreign === true) engine.pages.foreign(log)
    let lock = read?.lock
    let lockToken: string | undefined
    if (lock === 'taken') {
      lockToken = engine.locks.claim(read as FieldRead)
      // Requests that shared this lookup wait for the one that claimed its lock, here or on the flight.
      if (lockToken === undefined) lock = 'held'
      else if (engine.flights.has(id)) {
        engine.locks.unlock(key.storeKey, key.variant, lockToken, log)
        lockToken = undefined
      }
    }
    let entry = read?.value === undefined ? undefined : engine.pages.decode(read.value, log)
    if (entry !== undefined && !fits(entry.varyOn, request)) {
      // Made for other values of the headers its response varies on: this request's response lives in its own variant.
      // (No lock was taken by this read: a store takes one only on a missing value.)
      if (!followed) return { follow: varyVariant(key.variant, entry.varyOn as VaryOn, request), state: EMPTY_STATE }
      entry = undefined
      lockToken = undefined
      lock = undefined
    }
    const state: ReadState = { answered: read !== undefined, version: read?.version, lock, lockToken, stale: undefined, now: read?.now }
    const decision = decide(entry, Date.now(), this.#route)
    if (decision === 'hit') {
      // Not when a purge ran during the lookup: the entry may be what it removed. (`read` is set: the entry is its value.)
      if (generation === engine.invalidation.generation) engine.l1?.set(id, entry as PageEntry, (read as FieldRead).version)
      return { outcome: { kind: 'hit', entry: entry as PageEntry, from: 'store' }, state }
    }
    if (decision === 'stale') return { outcome: { kind: 'stale', entry: entry as PageEntry, refresh: true }, state }
    if (decision === 'grace') state.stale = entry
    return { state }
  }

  /** What a request that waited on a flight serves: its page, or the stale page when it failed within grace. */
  #afterFlight (
    flight: Flight<PageEntry>, shared: PageEntry | undefined, stale: PageEntry | undefined, request: FastifyRequest
  ): Outcome | undefined {
    // A page that varies on headers this request sends otherwise is not this request's: it computes its own.
    if (shared !== undefined && fits(shared.varyOn, request)) return { kind: 'hit', entry: shared, from: 'coalesced' }
    if (flight.failed && stale !== undefined) return { kind: 'stale', entry: stale, refresh: false }
    return undefined
  }

  /** This request computes the page: it leads the flight here and, with fleet single flight, holds the lock. */
  async #startMiss (
    request: FastifyRequest, key: RequestKey, id: string, generation: number, fleet: boolean, state: ReadState,
    fwd: Forward, followedVary: boolean
  ): Promise<Outcome> {
    const engine = this.#engine
    const log = request.log
    const flight = engine.flights.has(id) ? undefined : engine.flights.start(id)
    // Pages note when they began, by the store's clock, alongside the lock when there is one. Every page: its handler
    // may tag it (reply.cacheTags), and a tag invalidated while it ran must keep it out.
    const clock = !state.answered ? undefined : state.now ?? engine.pages.now(log)
    let { lockToken, version } = state
    // (A lock claimed at the read is held only when no flight existed, and nothing awaited since: this request leads.)
    if (flight !== undefined && fleet && lockToken === undefined && state.answered && state.lock !== undefined) {
      // Another process computes it ('held'), or a stale page needs a new computation ('free'): take the lock.
      const taken = state.lock === 'held' ? { held: true } : await engine.locks.lock(key.storeKey, key.variant, log)
      lockToken = taken.token
      if (taken.held) {
        const waited = await engine.locks.awaitRelease(key.storeKey, key.variant, (read) => this.#fresh(read, request), log)
        if (waited.entry !== undefined) {
          engine.flights.end(id, flight, waited.entry)
          return { kind: 'hit', entry: waited.entry, from: 'coalesced' }
        }
        lockToken = waited.token
        // A lock taken over was read with the version of now: the computation starts after that read.
        if (waited.version !== undefined) version = waited.version
      }
    }
    const startedAt = clock === undefined ? undefined : await clock
    const miss: Miss = {
      fwd,
      storeKey: key.storeKey,
      variant: key.variant,
      id,
      flight,
      generation,
      version,
      stale: state.stale,
      lockToken,
      startedAt,
      atLookup: {},
      followedVary,
      computeFrom: Date.now()
    }
    return { kind: 'miss', miss }
  }

  /** A fresh page in a read, if any, made for this request. */
  #fresh (read: FieldRead, request: FastifyRequest): PageEntry | undefined {
    const entry = read.value === undefined ? undefined : this.#engine.pages.decode(read.value, request.log)
    return entry !== undefined && freshForMs(entry, Date.now()) > 0 && fits(entry.varyOn, request) ? entry : undefined
  }
}
