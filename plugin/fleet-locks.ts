import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import type { FailOpen } from './fail-open.js'
import type { FieldLock, FieldRead, PageStore } from './stores/store.js'

/** How a waiter tells time: the process's clock, unless a test gives its own. */
export interface WaitClock {
  now: () => number
  sleep: (ms: number) => Promise<unknown>
}

const PROCESS_CLOCK: WaitClock = { now: Date.now, sleep }
const FLEET_POLL_FIRST_MS = 10
const FLEET_POLL_MAX_MS = 200

/** What a request waiting on another process's lock comes away with. */
export interface FleetWait<E> {
  /** The page its holder stored. */
  entry?: E
  /** The lock, taken over from a holder that died; `version` is the key's, read with it. */
  token?: string
  version?: number
}

/**
 * Fleet-wide locks on the variants being computed, on top of the fail-open layer: a cold page is computed once across
 * every process sharing the store. Tokens are this process's random id and a counter, so every lock is told apart.
 */
export class FleetLocks {
  readonly #store: PageStore
  readonly #failOpen: FailOpen
  readonly #lockTimeoutMs: number
  readonly #lookupTimeoutMs: number
  readonly #tokenPrefix = randomBytes(12).toString('base64url') + ':'
  #tokenCount = 0
  /** The token of each read that took a lock; claimed by the request that computes the page. */
  readonly #claimable = new WeakMap<FieldRead, string>()
  readonly #clock: WaitClock

  constructor (
    store: PageStore, failOpen: FailOpen, { lockTimeoutMs, lookupTimeoutMs }: { lockTimeoutMs: number, lookupTimeoutMs: number },
    clock: WaitClock = PROCESS_CLOCK
  ) {
    this.#store = store
    this.#failOpen = failOpen
    this.#lockTimeoutMs = lockTimeoutMs
    this.#lookupTimeoutMs = lookupTimeoutMs
    this.#clock = clock
  }

  /** Reads a variant and locks it when it is missing, in one store call. */
  async readOrLock (storeKey: string, variant: string, log: FastifyBaseLogger, takeOverOnly = false): Promise<FieldRead | undefined> {
    const { result: read, token } = await this.#locking('lookup', storeKey, variant, log,
      (lock) => this.#store.getField(storeKey, variant, { lock: { ...lock, takeOverOnly } }), (read) => read.lock === 'taken')
    if (read?.lock === 'taken') this.#claimable.set(read, token)
    return read
  }

  /** The lock a shared read took, to the first request that asks; later ones get undefined. */
  claim (read: FieldRead): string | undefined {
    const token = this.#claimable.get(read)
    this.#claimable.delete(read)
    return token
  }

  /**
   * Takes a variant's lock whether or not it is stored (a stale page being refreshed). `token`: ours; `held`: another
   * process computes it; neither: the store cannot say, so compute without a lock.
   */
  async lock (storeKey: string, variant: string, log?: FastifyBaseLogger): Promise<{ token?: string, held: boolean }> {
    const { result: taken, token } = await this.#locking('lock', storeKey, variant, log,
      async (lock) => await this.#store.lockField(storeKey, variant, lock), (late) => late)
    if (taken === undefined) return { held: false }
    return taken ? { token, held: false } : { held: true }
  }

  /**
   * Releases a lock if it is still ours. Not behind the breaker: a lock left in place would stall the page for every
   * process until it expires.
   */
  unlock (storeKey: string, variant: string, token: string, log?: FastifyBaseLogger): void {
    let unlocking: Promise<boolean>
    try {
      unlocking = this.#store.unlockField(storeKey, variant, token)
    } catch (err) {
      // A hand-written store may throw instead of rejecting: the request goes on all the same.
      unlocking = Promise.reject(err)
    }
    unlocking.catch((err: unknown) => this.#failOpen.warn(log, 'unlock', err, 'fastify-cache: a fleet lock could not be released; it expires'))
  }

  /**
   * Waits for the process holding a variant's lock to store it: polls with backoff until `fresh` finds a page, or
   * `lockTimeoutMs` passes. A lock that expired (its holder died) is taken over. A lock released without a page frees
   * the waiters, who compute their own. Neither entry nor token: compute without a lock.
   */
  async awaitRelease<E> (
    storeKey: string, variant: string, fresh: (read: FieldRead) => E | undefined, log: FastifyBaseLogger
  ): Promise<FleetWait<E>> {
    const deadline = this.#clock.now() + this.#lockTimeoutMs
    let delay = FLEET_POLL_FIRST_MS
    while (this.#clock.now() < deadline) {
      await this.#clock.sleep(delay)
      delay = Math.min(delay * 1.5, FLEET_POLL_MAX_MS)
      const read = await this.readOrLock(storeKey, variant, log, true)
      if (read === undefined || read.lock === undefined) return {}
      if (read.lock === 'taken') return { token: this.claim(read), version: read.version }
      const entry = fresh(read)
      if (entry !== undefined) return { entry }
      if (read.lock === 'free') return {}
    }
    return {}
  }

  /**
   * A store call that may take a variant's lock under a new token, within the lookup budget. One that gave up here
   * may still land in the store: a lock it took then is released, or it would stall the page for lockTimeoutMs.
   */
  async #locking<R> (
    kind: string, storeKey: string, variant: string, log: FastifyBaseLogger | undefined,
    call: (lock: FieldLock) => Promise<R>, took: (result: R) => boolean
  ): Promise<{ result: R | undefined, token: string }> {
    const token = this.#tokenPrefix + String(++this.#tokenCount)
    let calling: Promise<R> | undefined
    const result = await this.#failOpen.call(kind, async () => {
      calling = call({ token, ttlMs: this.#lockTimeoutMs })
      return await calling
    }, this.#lookupTimeoutMs, log)
    if (result === undefined) {
      // A call that failed may still have run (a connection lost after it was sent): release its token all the same.
      calling?.then((late) => { if (took(late)) this.unlock(storeKey, variant, token, log) },
        () => this.unlock(storeKey, variant, token, log))
    }
    return { result, token }
  }
}
