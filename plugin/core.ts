import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import { decodePage, freshForMs, type PageEntry } from './entry.js'
import { withTimeout } from './errors.js'
import { afterBudget, CircuitBreaker, RateLimitedLog, type BreakerState, type BreakerTicket } from './guard.js'
import type { NormalizedOptions } from './options.js'
import { toStoreKey } from './key.js'
import type { CacheStore, FieldLock, FieldRead } from './stores/store.js'
import type { BusMessage, BusStats, InvalidationBus, LocalTier } from './tiers.js'

/** Reserved logical namespaces under the prefix. */
export const TAG_NAMESPACE = '__tags/'
const FLEET_POLL_FIRST_MS = 10
const FLEET_POLL_MAX_MS = 200
/** Allowed disagreement between clocks, used only when the store's own clock could not be read. */
export const CLOCK_SKEW_MS = 1_000
const EMPTY = Buffer.alloc(0)

/** An error the store answered with (ioredis's ReplyError), as opposed to no answer: a lost connection, a timeout. */
function isReplyError (err: unknown): boolean {
  return err instanceof Error && err.name === 'ReplyError'
}

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
  readonly counters = {
    hits: 0, misses: 0, bypasses: 0, stale: 0, errors: 0, coalesced: 0, writes: 0, skipped: 0, l1Hits: 0
  }

  /** The in-process tier, when `l1` is on. */
  l1: LocalTier | undefined
  /** The invalidation bus, when `bus` is on. */
  bus: InvalidationBus | undefined
  /** Pages being refreshed in the background after a stale hit, so each is refreshed once. */
  readonly revalidating = new Set<string>()
  /** Marks this process's own background refresh requests; unguessable, so a client cannot forge one. */
  readonly revalidateToken = randomBytes(24).toString('base64url')
  readonly breaker: CircuitBreaker
  /** Bumped by every delete or clear: a response computed before it is not stored. */
  generation = 0
  /** Lookups under way, shared by concurrent requests for one key. */
  private readonly lookups = new Map<string, Promise<FieldRead | undefined>>()
  /** Lock tokens: this process's random id and a counter, so every lock taken is told apart across the fleet. */
  private readonly lockTokenPrefix = randomBytes(12).toString('base64url') + ':'
  private lockCount = 0
  /** The token of each lookup that took a lock; claimed by the request that computes the page. */
  private readonly lockTokens = new WeakMap<FieldRead, string>()
  private readonly decoded = new WeakMap<Buffer, PageEntry>()
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
    const stats: CacheStats = {
      ...this.counters, hitRatio: hits + misses === 0 ? 0 : hits / (hits + misses), breaker: this.breaker.state
    }
    if (this.bus !== undefined) stats.bus = this.bus.stats
    return stats
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
    const ticket = this.breaker.allow()
    if (ticket === undefined) {
      this.counters.skipped++
      return undefined
    }
    // An answer later than the lookup budget is no sign of health: it never closes the breaker, and a probe that has
    // not answered by then re-opens it at once (guard.ts: late). Only a probe needs the timer: for other calls lateness
    // only withholds the reset of the failure count, and the clock says it (no timer per request on the hot path).
    let late = false
    const started = ticket.probe ? 0 : Date.now()
    const stopBudget = ticket.probe
      ? afterBudget(this.options.lookupTimeoutMs, () => {
        late = true
        this.breaker.late(ticket)
      })
      : undefined
    try {
      const pending = call()
      const value = await (timeoutMs === undefined ? pending : withTimeout(pending, timeoutMs, kind))
      this.answered(ticket, started, late, log)
      return value
    } catch (err) {
      this.counters.errors++
      // A store that answers with an error (Redis full, a read-only replica) does not make requests wait: counted and
      // logged, but an answer all the same, so the breaker does not open, and hits go on while writes are refused.
      if (isReplyError(err)) this.answered(ticket, started, late, log)
      else this.breakerFailure(log, err, ticket)
      this.warn(log, kind, err, `fastify-cache: store ${kind} failed; serving without the cache`)
    } finally {
      stopBudget?.()
    }
    return undefined
  }

  /** The store answered (a value, or an error of its own): in time, that is health. */
  private answered (ticket: BreakerTicket, started: number, late: boolean, log: FastifyBaseLogger | undefined): void {
    if (late || (!ticket.probe && Date.now() - started > this.options.lookupTimeoutMs)) return
    if (this.breaker.success(ticket)) this.warn(log, 'breaker-closed', undefined, 'fastify-cache: the store answers again; caching resumes')
  }

  /** Breaker transitions are logged like failures, at most once per kind per interval, so a flapping store is one line. */
  private breakerFailure (log: FastifyBaseLogger | undefined, err: unknown, ticket: BreakerTicket): void {
    if (this.breaker.failure(ticket)) {
      this.warn(log, 'breaker-open', err, `fastify-cache: circuit breaker open; requests skip the store for ${this.options.breakerCooldownMs}ms`)
    }
  }

  /**
   * A page lookup: one store round trip, shared by concurrent requests for the same key, bounded in time. With
   * `lock`, a missing variant is locked fleet-wide with the read (atomically); the request that goes on to compute it
   * takes the lock with `claimLock`.
   */
  lookupPage (storeKey: string, variant: string, log: FastifyBaseLogger, lock = false): Promise<FieldRead | undefined> {
    const id = (lock ? 'L' : 'R') + storeKey + '\n' + variant
    const pending = this.lookups.get(id)
    if (pending !== undefined) return pending
    const lookup = lock
      ? this.readOrLock(storeKey, variant, log)
      : this.failOpen('lookup', () => this.store.getField(storeKey, variant), this.options.lookupTimeoutMs, log)
    this.lookups.set(id, lookup)
    lookup.then(() => { if (this.lookups.get(id) === lookup) this.lookups.delete(id) })
    return lookup
  }

  private newLockToken (): string {
    return this.lockTokenPrefix + String(++this.lockCount)
  }

  /** Reads a variant and locks it when it is missing. */
  private async readOrLock (
    storeKey: string, variant: string, log: FastifyBaseLogger, takeOverOnly = false
  ): Promise<FieldRead | undefined> {
    const { result: read, token } = await this.locking('lookup', storeKey, variant, log,
      (lock) => this.store.getField(storeKey, variant, { ...lock, takeOverOnly }), (read) => read.lock === 'taken')
    if (read?.lock === 'taken') this.lockTokens.set(read, token)
    return read
  }

  /**
   * A store call that may take a variant's lock under a new token, within the lookup budget. One that gave up here
   * may still land in the store: a lock it took then is released, or it would stall the page for lockTimeoutMs.
   */
  private async locking<R> (
    kind: string, storeKey: string, variant: string, log: FastifyBaseLogger | undefined,
    call: (lock: FieldLock) => Promise<R>, took: (result: R) => boolean
  ): Promise<{ result: R | undefined, token: string }> {
    const token = this.newLockToken()
    let calling: Promise<R> | undefined
    const result = await this.failOpen(kind, async () => {
      calling = call({ token, ttlMs: this.options.lockTimeoutMs })
      return await calling
    }, this.options.lookupTimeoutMs, log)
    if (result === undefined) {
      // A call that failed may still have run (a connection lost after it was sent): release its token all the same.
      calling?.then((late) => { if (took(late)) this.unlock(storeKey, variant, token, log) },
        () => this.unlock(storeKey, variant, token, log))
    }
    return { result, token }
  }

  /** The lock a shared lookup took, to the first request that asks; later ones get undefined. */
  claimLock (read: FieldRead): string | undefined {
    const token = this.lockTokens.get(read)
    this.lockTokens.delete(read)
    return token
  }

  /** A key held data of another type or a version we did not write: counted, logged, read as a miss. */
  foreign (log: FastifyBaseLogger): void {
    this.counters.errors++
    this.warn(log, 'decode', undefined, 'fastify-cache: foreign data under the prefix treated as a miss; it will be overwritten')
  }

  /** Decodes a stored page; corrupt or foreign bytes are logged and read as a miss (and later overwritten). */
  readPage (bytes: Buffer, log: FastifyBaseLogger): PageEntry | undefined {
    // Requests that shared one lookup share its bytes: decode them once.
    const decoded = this.decoded.get(bytes)
    if (decoded !== undefined) return decoded
    try {
      const entry = decodePage(bytes)
      this.decoded.set(bytes, entry)
      return entry
    } catch (err) {
      this.counters.errors++
      this.warn(log, 'decode', err, 'fastify-cache: unreadable entry treated as a miss')
      return undefined
    }
  }

  /** The store's clock, for ordering a computation against purges; undefined when the store cannot say. */
  async storeNow (log?: FastifyBaseLogger): Promise<number | undefined> {
    const store = this.store
    if (typeof store.now !== 'function') return Date.now()
    return await this.failOpen('time', async () => await (store.now as () => Promise<number>)(), this.options.lookupTimeoutMs, log)
  }

  /** The store key of a tag's index: a field key whose fields are the store keys carrying the tag. */
  tagKey (tag: string): string {
    return toStoreKey(this.prefix, TAG_NAMESPACE + tag)
  }

  /**
   * Stores a page or value variant in the background; a failure is logged and dropped. Nothing computed from data
   * older than a purge is kept, whichever process purged:
   * - `ifVersion`, the version the lookup saw, refuses the write when the key was deleted since;
   * - `startedAt`, when the computation began by the store's clock (`storeNow`), refuses the tag index writes when
   *   one of its tags was invalidated since, and the page is then taken back out. An invalidation that runs after the
   *   index writes finds the key and bumps its version, which refuses (or removes) the page write.
   */
  writeVariant (
    storeKey: string, variant: string, bytes: Buffer, ttlMs: number, tags: readonly string[],
    ifVersion: number | undefined, startedAt: number | undefined, log?: FastifyBaseLogger, unlock?: string
  ): Promise<boolean> {
    this.counters.writes++
    return this.failOpen('write', async () => {
      // All in one tick, so that a lookup issued after this response finds the page (one connection keeps order).
      const since = tags.length === 0 ? undefined : startedAt ?? Date.now() - CLOCK_SKEW_MS
      const indexing = Promise.all(tags.map(async (tag) =>
        await this.store.setField(this.tagKey(tag), storeKey, EMPTY, ttlMs, 0, undefined, since)))
      const writing = this.store.setField(storeKey, variant, bytes, ttlMs, this.options.maxVariants, ifVersion, undefined, unlock)
      const [indexed, written] = await Promise.all([indexing, writing])
      if (!indexed.includes(false)) return written
      // A tag was invalidated after this computation began: take the page back out, with a tombstone.
      if (written) await this.store.delete([storeKey], this.options.tombstoneMs)
      return false
    }, undefined, log).then((written) => {
      // The write that carried the unlock never ran or failed: release the lock on its own.
      if (written === undefined && unlock !== undefined) this.unlock(storeKey, variant, unlock, log)
      return written === true
    })
  }

  /**
   * Deletes keys (every variant of a page), leaving tombstones so that nothing computed before the delete is stored
   * after it, here or in another process. Rejects when the store fails.
   */
  async purge (storeKeys: string[], tags: readonly string[] = []): Promise<number> {
    this.invalidated(storeKeys, tags)
    try {
      const held = await this.store.delete(storeKeys, this.options.tombstoneMs)
      await this.bus?.publish(tags.length === 0 ? { keys: storeKeys } : { keys: storeKeys, tags: [...tags] })
      return held
    } finally {
      this.invalidated(storeKeys, tags)
    }
  }

  /** Removes everything under the prefix, here and (with the bus) from every instance's L1. */
  async clear (): Promise<number> {
    this.invalidated(undefined)
    try {
      const removed = await this.store.clear(this.prefix)
      await this.bus?.publish({ all: true })
      return removed
    } finally {
      this.invalidated(undefined)
    }
  }

  /** Another instance purged: drop our copies and keep responses computed before it out of the cache. */
  received (message: BusMessage): void {
    if (message.all === true) this.invalidated(undefined)
    else this.invalidated(message.keys ?? [], message.tags ?? [])
  }

  /** Purges every entry carrying any of the tags, with every variant, and the tags' indexes. */
  async invalidateTags (tags: readonly string[]): Promise<number> {
    const tagKeys = tags.map((tag) => this.tagKey(tag))
    const members = await Promise.all(tagKeys.map(async (key) => await this.store.fields(key)))
    const keys = [...new Set(members.flat())]
    const purged = await this.purge([...keys, ...tagKeys], tags)
    // A tag index that listed members was one of the keys purged: count only the entries.
    return purged - members.filter((names) => names.length > 0).length
  }

  /**
   * Drops tag members whose entry is gone (expired, evicted or deleted), so that a tag index refreshed by steady
   * writes does not collect dead keys. Runs every `tagPruneIntervalMs`; resolves how many members it dropped.
   */
  async pruneTags (): Promise<number> {
    if (typeof this.store.list !== 'function') return 0
    let dropped = 0
    const indexes = await this.store.list(this.prefix + TAG_NAMESPACE, Number.MAX_SAFE_INTEGER)
    for (const { key } of indexes) {
      const members = await this.store.fields(key)
      const alive = await Promise.all(members.map(async (member) => await this.store.has(member)))
      for (let i = 0; i < members.length; i++) {
        if (alive[i] === false && await this.store.deleteField(key, members[i] as string)) dropped++
      }
    }
    return dropped
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

  /**
   * Takes the fleet-wide lock of a variant whether or not it is stored (a stale page being refreshed). `token`: ours;
   * `held`: another process computes it; neither: the store cannot say, so compute without a lock.
   */
  async lockPage (storeKey: string, variant: string, log?: FastifyBaseLogger): Promise<{ token?: string, held: boolean }> {
    const { result: taken, token } = await this.locking('lock', storeKey, variant, log,
      async (lock) => await this.store.lockField(storeKey, variant, lock), (late) => late)
    if (taken === undefined) return { held: false }
    return taken ? { token, held: false } : { held: true }
  }

  /**
   * Releases a lock if it is still ours; one that expired and was taken by another process is left alone.
   * Not behind the breaker: a lock left in place would stall the page for every process.
   */
  unlock (storeKey: string, variant: string, token: string, log?: FastifyBaseLogger): void {
    let unlocking: Promise<boolean>
    try {
      unlocking = this.store.unlockField(storeKey, variant, token)
    } catch (err) {
      // A hand-written store may throw instead of rejecting: the request goes on all the same.
      unlocking = Promise.reject(err)
    }
    unlocking.catch((err: unknown) => this.warn(log, 'unlock', err, 'fastify-cache: a fleet lock could not be released; it expires'))
  }

  /**
   * Waits for the process holding a page's lock to store it: polls with backoff until a fresh entry appears, or
   * `lockTimeoutMs` passes. A lock that expired (its holder died) is taken over (`token`, with the `version` read
   * with it). A lock released without a fresh page (a response that may not be stored, a failed handler) frees the
   * waiters, who compute their own, as in one process. Neither entry nor token: compute without a lock.
   */
  async awaitFleet (storeKey: string, variant: string, log: FastifyBaseLogger): Promise<{ entry?: PageEntry, token?: string, version?: number }> {
    const deadline = Date.now() + this.options.lockTimeoutMs
    let delay = FLEET_POLL_FIRST_MS
    while (Date.now() < deadline) {
      await sleep(delay)
      delay = Math.min(delay * 1.5, FLEET_POLL_MAX_MS)
      const read = await this.readOrLock(storeKey, variant, log, true)
      if (read === undefined || read.lock === undefined) return {}
      if (read.lock === 'taken') return { token: this.claimLock(read), version: read.version }
      const entry = read.value === undefined ? undefined : this.readPage(read.value, log)
      if (entry !== undefined && freshForMs(entry, Date.now()) > 0) return { entry }
      if (read.lock === 'free') return {}
    }
    return {}
  }

  /** Waits for another request's computation, up to `lockTimeoutMs`; undefined when it stored nothing. */
  async awaitFlight (flight: Flight): Promise<PageEntry | undefined> {
    return await withTimeout(flight.promise, this.options.lockTimeoutMs, 'wait').catch(() => undefined)
  }

  /**
   * After a delete or clear: nothing computed or looked up before it may be stored or shared after it, and L1 drops
   * the keys (all of it when `storeKeys` is undefined).
   */
  invalidated (storeKeys?: readonly string[], tags: readonly string[] = []): void {
    this.generation++
    this.lookups.clear()
    this.flights.clear()
    if (storeKeys === undefined) {
      this.l1?.clear()
    } else {
      this.l1?.deleteKeys(storeKeys)
      this.l1?.deleteTags(tags)
    }
  }
}
