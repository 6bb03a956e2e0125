import type { FastifyBaseLogger } from 'fastify'
import { decodePage, type PageEntry } from './entry.js'
import { CircuitBreaker, RateLimitedLog, withTimeout, type BreakerState } from './guard.js'
import type { NormalizedOptions } from './options.js'
import type { CacheStore } from './stores/store.js'

export interface CacheStats {
  /** Requests (and wrap/memoize/get calls) answered from the cache. */
  hits: number
  /** Lookups that found nothing fresh. */
  misses: number
  /** Requests that skipped the cache: `unless`, authorization, a method other than GET/HEAD, an unkeyed query. */
  bypasses: number
  /** Stale responses served. */
  stale: number
  /** Store failures and timeouts; each one counted, whether logged or not. */
  errors: number
  /** hits / (hits + misses), 0 before any lookup. */
  hitRatio: number
  /** Hits that waited for another request computing the same key instead of running the handler. */
  coalesced: number
  /** Entries written. */
  writes: number
  /** Lookups and writes skipped because the breaker was open. */
  skipped: number
  breaker: BreakerState
}

export interface Flight {
  promise: Promise<PageEntry | undefined>
  resolve: (entry: PageEntry | undefined) => void
  /** The leader's handler failed (5xx): its waiters queue behind one new leader instead of all retrying at once. */
  failed: boolean
}

/**
 * The shared engine behind the hooks and the `fastify.cache` API: store access that fails open (time budget,
 * circuit breaker, rate-limited logs), counters, and single flight.
 */
export class CacheCore {
  readonly store: CacheStore
  readonly options: NormalizedOptions
  readonly prefix: string
  readonly counters = { hits: 0, misses: 0, bypasses: 0, stale: 0, errors: 0, coalesced: 0, writes: 0, skipped: 0 }
  readonly breaker: CircuitBreaker
  /** Bumped by every delete or clear: a response computed before it is not stored. */
  generation = 0
  /** Lookups under way, shared by concurrent requests for one key. */
  private readonly lookups = new Map<string, Promise<Buffer | undefined>>()
  /** Cold pages being computed in this process, by `storeKey\nvariant`. */
  readonly flights = new Map<string, Flight>()
  private readonly failureLog: RateLimitedLog
  private readonly log: FastifyBaseLogger

  constructor (store: CacheStore, options: NormalizedOptions, log: FastifyBaseLogger) {
    this.store = store
    this.options = options
    this.prefix = options.prefix
    this.log = log
    this.breaker = new CircuitBreaker(options.breakerThreshold, options.breakerCooldownMs)
    this.failureLog = new RateLimitedLog(options.errorLogIntervalMs)
  }

  stats (): CacheStats {
    const { hits, misses } = this.counters
    return { ...this.counters, hitRatio: hits + misses === 0 ? 0 : hits / (hits + misses), breaker: this.breaker.state }
  }

  warn (log: FastifyBaseLogger | undefined, kind: string, err: unknown, message: string): void {
    this.failureLog.warn(log ?? this.log, kind, err, message)
  }

  /**
   * Runs a store call that must not fail a request: errors and timeouts resolve `undefined` and are counted, and
   * nothing is asked of the store while the breaker is open.
   */
  async failOpen<T> (
    kind: string, call: () => Promise<T>, timeoutMs: number | undefined, log?: FastifyBaseLogger
  ): Promise<T | undefined> {
    if (!this.breaker.allow()) {
      this.counters.skipped++
      return undefined
    }
    try {
      const pending = call()
      const value = await (timeoutMs === undefined ? pending : withTimeout(pending, timeoutMs, kind))
      if (this.breaker.success()) (log ?? this.log).info('fastify-cache: the store answers again; caching resumes')
      return value
    } catch (err) {
      this.counters.errors++
      if (this.breaker.failure()) {
        (log ?? this.log).warn({ err }, 'fastify-cache: circuit breaker open; requests skip the store for ' +
          `${this.options.breakerCooldownMs}ms`)
      }
      this.warn(log, kind, err, `fastify-cache: store ${kind} failed; serving without the cache`)
      return undefined
    }
  }

  /** A page lookup: one store round trip, shared by concurrent requests for the same key, bounded in time. */
  lookupPage (storeKey: string, variant: string, log: FastifyBaseLogger): Promise<Buffer | undefined> {
    const id = storeKey + '\n' + variant
    const pending = this.lookups.get(id)
    if (pending !== undefined) return pending
    const lookup = this.failOpen('lookup', () => this.store.getField(storeKey, variant), this.options.lookupTimeoutMs, log)
    this.lookups.set(id, lookup)
    lookup.then(() => { if (this.lookups.get(id) === lookup) this.lookups.delete(id) })
    return lookup
  }

  /** Decodes a stored page; corrupt or foreign bytes are logged and read as a miss (and later overwritten). */
  readPage (bytes: Buffer, log: FastifyBaseLogger): PageEntry | undefined {
    try {
      return decodePage(bytes)
    } catch (err) {
      this.counters.errors++
      this.warn(log, 'decode', err, 'fastify-cache: unreadable entry treated as a miss')
      return undefined
    }
  }

  /** Stores a page in the background; a failure is logged and dropped. */
  writePage (storeKey: string, variant: string, bytes: Buffer, ttlMs: number, log: FastifyBaseLogger): void {
    this.counters.writes++
    this.failOpen('write',
      () => this.store.setField(storeKey, variant, bytes, ttlMs, this.options.maxVariants), undefined, log)
  }

  startFlight (id: string): Flight {
    let resolve!: Flight['resolve']
    const promise = new Promise<PageEntry | undefined>((_resolve) => { resolve = _resolve })
    const flight = { promise, resolve, failed: false }
    this.flights.set(id, flight)
    return flight
  }

  endFlight (id: string, flight: Flight, entry: PageEntry | undefined, failed: boolean): void {
    if (this.flights.get(id) === flight) this.flights.delete(id)
    flight.failed = failed
    flight.resolve(entry)
  }

  /** Waits for another request's computation, up to `lockTimeoutMs`; undefined when it stored nothing. */
  async awaitFlight (flight: Flight): Promise<PageEntry | undefined> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), this.options.lockTimeoutMs) })
    try {
      return await Promise.race([flight.promise, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  /** After a delete or clear: nothing computed or looked up before it may be stored or shared after it. */
  invalidated (): void {
    this.generation++
    this.lookups.clear()
    this.flights.clear()
  }
}
