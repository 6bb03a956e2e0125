import type { CacheLabel } from './cache-status.js'

/** One response of a cached route, counted once, under its `x-cache` label. */
export interface ResponseObservation {
  /** The route pattern (`/post/:id`), never the raw URL. */
  route: string
  label: CacheLabel
  /** Where a hit came from: the store, this process's memory (L1), or another request's computation. */
  from: 'store' | 'l1' | 'coalesced' | undefined
}

/** A page lookup past L1 (the store read, and any wait on another request's computation). */
export interface LookupObservation {
  route: string
  /** What the lookup decided: `hit`, `stale`, `miss`, or `pass` (run the handler, store nothing). */
  outcome: 'hit' | 'stale' | 'miss' | 'pass'
  durationMs: number
}

/** The handler run of a miss: from the miss decision until onSend has the payload. */
export interface ComputeObservation {
  route: string
  durationMs: number
}

/**
 * What `fastify.cache.observe()` takes: any of these, called synchronously as the event happens. An observer that
 * throws is ignored (the cache is never the reason a request fails), so it should keep its own errors.
 */
export interface CacheObserver {
  response?: (observation: ResponseObservation) => void
  lookup?: (observation: LookupObservation) => void
  compute?: (observation: ComputeObservation) => void
  /** A store failure or timeout, or unreadable bytes under the prefix: each one counted in `stats().errors`. */
  error?: () => void
  /** An invalidation from another instance arrived over the bus, `delayMs` after it was published. */
  busDelivery?: (delayMs: number) => void
}

type Events = { [Name in keyof CacheObserver]-?: Parameters<NonNullable<CacheObserver[Name]>> }

/**
 * The observers of one cache, shared by every engine the plugin builds (the store may change at ready), so that what
 * subscribed once keeps hearing. `active` is the hot path's one check: with nobody listening nothing is measured.
 */
export class CacheObservers {
  readonly #observers: CacheObserver[]

  constructor () {
    this.#observers = []
  }

  get active (): boolean {
    return this.#observers.length > 0
  }

  /** Adds an observer; returns the function that removes it. */
  add (observer: CacheObserver): () => void {
    this.#observers.push(observer)
    return () => {
      const at = this.#observers.indexOf(observer)
      if (at !== -1) this.#observers.splice(at, 1)
    }
  }

  emit<Name extends keyof Events> (name: Name, ...args: Events[Name]): void {
    for (const observer of this.#observers) {
      const listener = observer[name] as ((...args: Events[Name]) => void) | undefined
      if (listener === undefined) continue
      try {
        listener.apply(observer, args)
      } catch {
        // An observer's bug (a metrics library, say) must not fail the request that reported it.
      }
    }
  }
}
