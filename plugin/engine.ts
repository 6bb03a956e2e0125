import { randomBytes } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import { InvalidationBus } from './bus.js'
import { EdgeHeaders } from './edge.js'
import type { PageEntry } from './entry.js'
import { FailOpen } from './fail-open.js'
import { FleetLocks } from './fleet-locks.js'
import { Invalidation } from './invalidation.js'
import { Keyspace } from './keyspace.js'
import { LocalTier } from './l1.js'
import { LocalValues } from './local-values.js'
import { CacheObservers } from './observers.js'
import type { NormalizedOptions } from './options.js'
import { PurgeReporter } from './purge-reporter.js'
import { SingleFlight } from './single-flight.js'
import { CacheCounters, type CacheStats } from './stats.js'
import { StoredPages } from './stored-pages.js'
import { RedisStore } from './stores/redis.js'
import { isPageStore, type CacheStore, type PageStore } from './stores/store.js'
import { ValuePages } from './stores/value-pages.js'

/**
 * The parts behind the hooks and the `fastify.cache` API, each built here once and owning its own state: the store
 * behind the fail-open layer, fleet locks, stored pages, single flights, L1 and the bus, purges, and counters.
 */
export class CacheEngine {
  readonly options: NormalizedOptions
  readonly keyspace: Keyspace
  /** Who listens to what the cache does (metrics); kept across engines, so passed in. */
  readonly observers: CacheObservers
  readonly counters: CacheCounters
  /** The store as given; pages go through `store`, which adds the page part to a value-only store. */
  readonly givenStore: CacheStore
  readonly store: PageStore
  readonly failOpen: FailOpen
  readonly locks: FleetLocks
  readonly pages: StoredPages
  /** Cold pages being computed in this process, by page id. */
  readonly flights = new SingleFlight<PageEntry>()
  /** Stale pages being refreshed in the background, so each is refreshed once. */
  readonly refreshes = new SingleFlight<void>()
  /** `wrap` and `memoize` computations. */
  readonly values = new SingleFlight<unknown>()
  readonly l1: LocalTier | undefined
  readonly bus: InvalidationBus | undefined
  readonly invalidation: Invalidation
  /** `get`/`wrap`/`memoize` values in L1, when L1 is on. */
  readonly localValues: LocalValues | undefined
  /** The edge headers of stored and served pages, with the `edge` option. */
  readonly edge: EdgeHeaders | undefined
  /** Tells the app's `onPurge` what each purge removed. */
  readonly purges: PurgeReporter
  /**
   * Marks this process's own background refresh and warming requests; unguessable, so a client cannot forge one. An
   * engine that replaces another keeps its token, so a warming begun before the swap is still recognised.
   */
  readonly refreshToken: string

  constructor (
    store: CacheStore, options: NormalizedOptions, log: FastifyBaseLogger, observers: CacheObservers,
    refreshToken = randomBytes(24).toString('base64url')
  ) {
    this.refreshToken = refreshToken
    this.options = options
    this.observers = observers
    this.counters = new CacheCounters(observers)
    this.keyspace = new Keyspace(options.prefix)
    this.givenStore = store
    this.store = isPageStore(store) ? store : new ValuePages(store)
    this.failOpen = new FailOpen(options, this.counters, log)
    this.locks = new FleetLocks(this.store, this.failOpen, options)
    this.pages = new StoredPages(this.store, this.failOpen, this.locks, this.keyspace, this.counters, options)
    this.l1 = options.l1 === undefined ? undefined : new LocalTier(options.l1)
    this.bus = options.bus && store instanceof RedisStore
      ? new InvalidationBus(store.client, this.keyspace.busChannel, log,
        (message, delayMs) => {
          if (delayMs !== undefined) observers.emit('busDelivery', delayMs)
          this.invalidation.received(message)
        },
        // Purges published while we were not listening are lost: L1 stays empty and off until we listen again.
        (connected) => this.l1?.setTrusted(connected))
      : undefined
    // L1 is off until the bus is up: a purge it missed could leave an old page in memory.
    if (this.bus !== undefined) this.l1?.setTrusted(false)
    this.invalidation = new Invalidation(this.store, this.keyspace, options.tombstoneMs, {
      l1: this.l1,
      bus: this.bus,
      forget: () => {
        this.pages.forgetLookups()
        this.flights.clear()
      }
    })
    this.localValues = this.l1 === undefined ? undefined : new LocalValues(this.l1, this.invalidation)
    const edge = options.edge
    // A cut list is the app's to fix (fewer or shorter tags): said once per interval, not once per response.
    this.edge = edge === undefined
      ? undefined
      : new EdgeHeaders(edge, this.keyspace, (dropped) => this.failOpen.warn(undefined, 'edge-cut', undefined,
        `fastify-cache: a page's tags passed the ${edge.tagHeader} header's limits; the last ${dropped} were left out`))
    this.purges = new PurgeReporter(options.onPurge, this.keyspace, options.edge?.tagHeader ?? 'surrogate-key', log)
  }

  stats (): CacheStats {
    return this.counters.snapshot(this.failOpen.breakerState, this.bus?.stats)
  }
}
