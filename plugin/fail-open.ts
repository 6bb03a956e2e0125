import type { FastifyBaseLogger } from 'fastify'
import { CircuitBreaker, type BreakerState, type BreakerTicket } from './breaker.js'
import { RateLimitedLog } from './failure-log.js'
import type { CacheCounters } from './stats.js'
import { afterBudget, withTimeout } from './timeout.js'

export interface FailOpenSettings {
  /** An answer later than this is no sign of health. */
  lookupTimeoutMs: number
  breakerThreshold: number
  breakerCooldownMs: number
  errorLogIntervalMs: number
}

/** An error the store answered with (ioredis's ReplyError), as opposed to no answer: a lost connection, a timeout. */
function isReplyError (err: unknown): boolean {
  return err instanceof Error && err.name === 'ReplyError'
}

/**
 * The layer every store call a request depends on goes through: errors and timeouts resolve `undefined` and are
 * counted and logged (rate-limited), and nothing is asked of the store while the circuit breaker is open.
 */
export class FailOpen {
  readonly #breaker: CircuitBreaker
  readonly #failureLog: RateLimitedLog
  readonly #settings: FailOpenSettings
  readonly #counters: CacheCounters
  readonly #log: FastifyBaseLogger

  constructor (settings: FailOpenSettings, counters: CacheCounters, log: FastifyBaseLogger, now: () => number = Date.now) {
    this.#settings = settings
    this.#counters = counters
    this.#log = log
    this.#breaker = new CircuitBreaker(settings.breakerThreshold, settings.breakerCooldownMs, now)
    this.#failureLog = new RateLimitedLog(settings.errorLogIntervalMs)
  }

  get breakerState (): BreakerState {
    return this.#breaker.state
  }

  warn (log: FastifyBaseLogger | undefined, kind: string, err: unknown, message: string): void {
    this.#failureLog.warn(log ?? this.#log, kind, err, message)
  }

  /** Runs `call` unless the breaker is open; `timeoutMs` bounds the wait (the call itself may still land later). */
  async call<T> (kind: string, call: () => Promise<T>, timeoutMs?: number, log?: FastifyBaseLogger): Promise<T | undefined> {
    const ticket = this.#breaker.allow()
    if (ticket === undefined) {
      this.#counters.skipped()
      return undefined
    }
    // An answer later than the lookup budget is no sign of health: it never closes the breaker, and a probe that has
    // not answered by then re-opens it at once. Only a probe needs a timer; for other calls the clock says it.
    let late = false
    const started = ticket.probe ? 0 : Date.now()
    const stopBudget = ticket.probe
      ? afterBudget(this.#settings.lookupTimeoutMs, () => {
        late = true
        this.#breaker.late(ticket)
      })
      : undefined
    try {
      const pending = call()
      const value = await (timeoutMs === undefined ? pending : withTimeout(pending, timeoutMs, kind))
      this.#answered(ticket, started, late, log)
      return value
    } catch (err) {
      this.#counters.error()
      // A store that answers with an error (Redis full, a read-only replica) does not make requests wait: counted and
      // logged, but an answer all the same, so the breaker does not open, and hits go on while writes are refused.
      if (isReplyError(err)) this.#answered(ticket, started, late, log)
      else if (this.#breaker.failure(ticket)) {
        this.warn(log, 'breaker-open', err,
          `fastify-cache: circuit breaker open; requests skip the store for ${this.#settings.breakerCooldownMs}ms`)
      }
      this.warn(log, kind, err, `fastify-cache: store ${kind} failed; serving without the cache`)
    } finally {
      stopBudget?.()
    }
    return undefined
  }

  /**
   * The connection reports it is back: end the cooldown, and probe with `ping` at once (one round trip) rather than
   * with a lookup that may take two and miss the budget on a process still busy from the outage.
   */
  probeNow (ping: () => Promise<unknown>): void {
    this.#breaker.probeNow()
    if (this.#breaker.state === 'half-open') this.call('probe', ping).catch(() => {})
  }

  /** The store answered (a value, or an error of its own): in time, that is health. */
  #answered (ticket: BreakerTicket, started: number, late: boolean, log: FastifyBaseLogger | undefined): void {
    if (late || (!ticket.probe && Date.now() - started > this.#settings.lookupTimeoutMs)) return
    if (this.#breaker.success(ticket)) this.warn(log, 'breaker-closed', undefined, 'fastify-cache: the store answers again; caching resumes')
  }
}
