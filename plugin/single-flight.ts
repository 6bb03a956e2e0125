import { withTimeout } from './timeout.js'

/** One computation under way, which later callers for the same id wait on instead of computing again. */
export interface Flight<T> {
  readonly promise: Promise<T | undefined>
  /** The leader failed (for pages: a 5xx): its waiters queue behind one new leader instead of all retrying at once. */
  readonly failed: boolean
}

interface OpenFlight<T> extends Flight<T> {
  failed: boolean
  resolve: (value: T | undefined) => void
}

/**
 * Single flight in this process: one computation per id at a time, shared by every caller that asks meanwhile. It
 * serves page computations (a leader request whose response ends the flight), shared lookups, background refreshes,
 * and `wrap`/`memoize` values.
 */
export class SingleFlight<T> {
  /** Computations led by a caller that ends them itself (`start`/`end`). */
  readonly #flights = new Map<string, OpenFlight<T>>()
  /** Computations that are one promise (`run`). */
  readonly #running = new Map<string, Promise<T>>()

  get (id: string): Flight<T> | undefined {
    return this.#flights.get(id)
  }

  has (id: string): boolean {
    return this.#flights.has(id) || this.#running.has(id)
  }

  /** Makes the caller the leader of `id`; it must `end` the flight. */
  start (id: string): Flight<T> {
    let resolve!: (value: T | undefined) => void
    const promise = new Promise<T | undefined>((_resolve) => { resolve = _resolve })
    const flight: OpenFlight<T> = { promise, resolve, failed: false }
    this.#flights.set(id, flight)
    return flight
  }

  /** Hands `value` (undefined: nothing to share) to the waiters; a flight replaced meanwhile stays in place. */
  end (id: string, flight: Flight<T>, value: T | undefined, failed = false): void {
    const open = flight as OpenFlight<T>
    if (this.#flights.get(id) === open) this.#flights.delete(id)
    open.failed = failed
    open.resolve(value)
  }

  /** Waits for a flight's value, up to `timeoutMs`; undefined when it shares nothing or takes longer. */
  async wait (flight: Flight<T>, timeoutMs: number): Promise<T | undefined> {
    return await withTimeout(flight.promise, timeoutMs, 'wait').catch(() => undefined)
  }

  /**
   * Runs `compute` unless a computation of `id` is under way, whose result (or rejection) is then shared. `shared`
   * says which.
   */
  run (id: string, compute: () => Promise<T>): { promise: Promise<T>, shared: boolean } {
    const running = this.#running.get(id)
    if (running !== undefined) return { promise: running, shared: true }
    const promise = compute()
    this.#running.set(id, promise)
    const forget = (): void => { if (this.#running.get(id) === promise) this.#running.delete(id) }
    promise.then(forget, forget)
    return { promise, shared: false }
  }

  /** Forgets every computation under way: callers from now on start their own (after a purge). */
  clear (): void {
    this.#flights.clear()
    this.#running.clear()
  }
}
