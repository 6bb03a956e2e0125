import type { FastifyBaseLogger } from 'fastify'

export type BreakerState = 'closed' | 'open' | 'half-open'

/**
 * Stops asking a failing store for `cooldownMs` after `threshold` consecutive failures, then lets one call probe it.
 * While open, lookups are misses and writes are dropped, so no request waits on a dead Redis.
 */
export class CircuitBreaker {
  private failures = 0
  private openUntil = 0
  private probing = false

  constructor (private readonly threshold: number, private readonly cooldownMs: number) {}

  get state (): BreakerState {
    if (this.openUntil === 0) return 'closed'
    return Date.now() < this.openUntil ? 'open' : 'half-open'
  }

  /** Whether a call may go to the store now. In half-open, only one call at a time. */
  allow (): boolean {
    if (this.openUntil === 0) return true
    if (Date.now() < this.openUntil || this.probing) return false
    this.probing = true
    return true
  }

  /** Ends the cooldown now: the next call probes. For when the connection reports it is back. */
  probeNow (): void {
    if (this.openUntil !== 0) this.openUntil = Math.min(this.openUntil, Date.now())
  }

  /** Returns true when this success closed an open breaker. */
  success (): boolean {
    const wasOpen = this.openUntil !== 0
    this.failures = 0
    this.openUntil = 0
    this.probing = false
    return wasOpen
  }

  /** Returns true when this failure opened the breaker. */
  failure (): boolean {
    const wasClosed = this.openUntil === 0
    this.probing = false
    this.failures++
    if (this.failures < this.threshold) return false
    this.openUntil = Date.now() + this.cooldownMs
    return wasClosed
  }
}

/** Logs at most one line per kind of failure per interval, with the count of the lines it held back. */
export class RateLimitedLog {
  private readonly last = new Map<string, { at: number, suppressed: number }>()

  constructor (private readonly intervalMs: number) {}

  warn (log: FastifyBaseLogger, kind: string, err: unknown, message: string): void {
    const now = Date.now()
    const seen = this.last.get(kind)
    if (seen !== undefined && now - seen.at < this.intervalMs) {
      seen.suppressed++
      return
    }
    log.warn({ err, cacheFailure: kind, suppressed: seen?.suppressed ?? 0 }, message)
    this.last.set(kind, { at: now, suppressed: 0 })
  }
}
