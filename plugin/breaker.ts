export type BreakerState = 'closed' | 'open' | 'half-open'

/** What `allow` hands a call it lets through; the call's outcome is reported with it. */
export interface BreakerTicket {
  /** The breaker's epoch when the call was let through: an outcome from an earlier epoch is ignored. */
  readonly epoch: number
  /** The one call that probes a half-open breaker. */
  readonly probe: boolean
}

/**
 * Stops asking a failing store for `cooldownMs` after `threshold` consecutive failures, then lets one call probe it.
 * While open, lookups are misses and writes are dropped, so no request waits on a dead Redis.
 *
 * Every call is let through with a ticket and reports its outcome with it. Only the probe decides whether an open
 * breaker closes; the outcome of a call let through before the last opening or closing says nothing about the store
 * now (a late answer must not close the breaker, a late failure must not extend its cooldown) and is ignored.
 */
export class CircuitBreaker {
  private failures = 0
  private openUntil = 0
  private probing = false
  /** Bumped when the breaker opens, closes, or gives up on a probe. */
  private epoch = 0

  constructor (
    private readonly threshold: number,
    private readonly cooldownMs: number,
    private readonly now: () => number = Date.now
  ) {}

  get state (): BreakerState {
    if (this.openUntil === 0) return 'closed'
    return this.now() < this.openUntil ? 'open' : 'half-open'
  }

  /** A ticket when a call may go to the store now, else undefined. In half-open, only one call at a time: the probe. */
  allow (): BreakerTicket | undefined {
    if (this.openUntil === 0) return { epoch: this.epoch, probe: false }
    if (this.now() < this.openUntil || this.probing) return undefined
    this.probing = true
    return { epoch: this.epoch, probe: true }
  }

  /**
   * Ends the cooldown now: the next call probes. For when the connection reports it is back; a probe still in flight
   * was sent before that (it may sit in the old connection's queue), so its outcome no longer counts.
   */
  probeNow (): void {
    if (this.openUntil === 0) return
    this.openUntil = Math.min(this.openUntil, this.now())
    if (this.probing) this.transition(this.openUntil)
  }

  /** The call answered within the budget. Returns true when this closed the breaker (only the probe can). */
  success (ticket: BreakerTicket): boolean {
    if (ticket.epoch !== this.epoch) return false
    if (ticket.probe) {
      this.transition(0)
      return true
    }
    this.failures = 0
    return false
  }

  /**
   * The call has not answered within the budget (it may still). That is no sign of health, but no request waits on
   * it either: every call a request waits on has a timeout, which is a failure. So a call let through while closed
   * neither counts nor resets the count (a busy process, or a long sweep, is not a failing store), while a probe
   * re-opens the breaker at once rather than holding it half-open until the answer comes.
   */
  late (ticket: BreakerTicket): void {
    if (ticket.epoch === this.epoch && ticket.probe) this.transition(this.now() + this.cooldownMs)
  }

  /** The call failed or timed out. Returns true when this opened a closed breaker. */
  failure (ticket: BreakerTicket): boolean {
    if (ticket.epoch !== this.epoch) return false
    if (ticket.probe) {
      this.transition(this.now() + this.cooldownMs)
      return false
    }
    if (++this.failures < this.threshold) return false
    this.transition(this.now() + this.cooldownMs)
    return true
  }

  private transition (openUntil: number): void {
    this.openUntil = openUntil
    this.failures = 0
    this.probing = false
    this.epoch++
  }
}
