/** The counters a sample keeps; a subset of fastify-cache's CacheStats. */
export interface CounterSnapshot {
  hits: number
  misses: number
  bypasses: number
}

export interface StatsSample {
  /** Epoch milliseconds of the sample. */
  at: number
  hits: number
  misses: number
  bypasses: number
  /** Hit ratio of the lookups since the previous sample; null when there were none. */
  ratio: number | null
}

/**
 * A ring buffer of per-interval cache counters for the dashboard chart. Counters are cumulative in the plugin;
 * each sample stores what happened since the one before it.
 */
export class StatsHistory {
  readonly capacity: number
  readonly #samples: Array<StatsSample | undefined>
  #next = 0
  #size = 0
  #previous: CounterSnapshot | undefined

  constructor (capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 2) throw new Error('StatsHistory capacity must be an integer >= 2')
    this.capacity = capacity
    this.#samples = new Array<StatsSample | undefined>(capacity)
  }

  /** Sets the counters the first interval is measured from. */
  start (counters: CounterSnapshot): void {
    this.#previous = { hits: counters.hits, misses: counters.misses, bypasses: counters.bypasses }
  }

  record (counters: CounterSnapshot, at: number): StatsSample {
    const previous = this.#previous ?? { hits: 0, misses: 0, bypasses: 0 }
    // Counters only grow; max() keeps a counter reset from drawing a negative interval.
    const hits = Math.max(0, counters.hits - previous.hits)
    const misses = Math.max(0, counters.misses - previous.misses)
    const bypasses = Math.max(0, counters.bypasses - previous.bypasses)
    const sample: StatsSample = { at, hits, misses, bypasses, ratio: hits + misses === 0 ? null : hits / (hits + misses) }
    this.#samples[this.#next] = sample
    this.#next = (this.#next + 1) % this.capacity
    this.#size = Math.min(this.#size + 1, this.capacity)
    this.start(counters)
    return sample
  }

  /** Oldest first. */
  samples (): StatsSample[] {
    const out: StatsSample[] = []
    for (let i = 0; i < this.#size; i++) {
      const sample = this.#samples[(this.#next - this.#size + i + this.capacity) % this.capacity]
      if (sample !== undefined) out.push(sample)
    }
    return out
  }
}
