import type { BreakerState } from './breaker.js'
import type { BusStats } from './bus.js'
import { CacheObservers, type ResponseObservation } from './observers.js'

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
  /** Hits served from the in-process tier, without a store round trip. */
  l1Hits: number
  breaker: BreakerState
  /** The invalidation bus, when on. */
  bus?: BusStats
}

/** What this process counted, one method per event, read whole with `snapshot`; errors and responses also reach the observers. */
export class CacheCounters {
  readonly #observers: CacheObservers
  #hits = 0
  #misses = 0
  #bypasses = 0
  #stale = 0
  #errors = 0
  #coalesced = 0
  #writes = 0
  #skipped = 0
  #l1Hits = 0

  constructor (observers: CacheObservers = new CacheObservers()) {
    this.#observers = observers
  }

  /** A response or value served from the cache; `coalesced` when it waited on another computation of it. */
  hit (from: 'store' | 'l1' | 'coalesced' = 'store'): void {
    this.#hits++
    if (from === 'l1') this.#l1Hits++
    else if (from === 'coalesced') this.#coalesced++
  }

  miss (): void { this.#misses++ }
  bypass (): void { this.#bypasses++ }
  stale (): void { this.#stale++ }
  error (): void {
    this.#errors++
    if (this.#observers.active) this.#observers.emit('error')
  }

  /** Whether anyone observes: only then does `mark` report each response with its route. */
  get observed (): boolean { return this.#observers.active }
  response (observation: ResponseObservation): void { this.#observers.emit('response', observation) }
  write (): void { this.#writes++ }
  skipped (): void { this.#skipped++ }
  /** A value call that shared another caller's computation (wrap, memoize). */
  coalesced (): void { this.#coalesced++ }

  get errors (): number { return this.#errors }
  get skippedCalls (): number { return this.#skipped }

  snapshot (breaker: BreakerState, bus: BusStats | undefined): CacheStats {
    const hits = this.#hits
    const misses = this.#misses
    const stats: CacheStats = {
      hits,
      misses,
      bypasses: this.#bypasses,
      stale: this.#stale,
      errors: this.#errors,
      coalesced: this.#coalesced,
      writes: this.#writes,
      skipped: this.#skipped,
      l1Hits: this.#l1Hits,
      hitRatio: hits + misses === 0 ? 0 : hits / (hits + misses),
      breaker
    }
    if (bus !== undefined) stats.bus = bus
    return stats
  }
}
