// Small clients the runner keeps beside the load: one watches x-cache on a URL, one samples fastify.cache.stats().
import { setTimeout as sleep } from 'node:timers/promises'

export interface Poll {
  sentAt: number
  at: number
  status: number
  cache: string
}

export interface StatsSample {
  at: number
  hits: number
  misses: number
  coalesced: number
  errors: number
  skipped: number
  l1Hits: number
  writes: number
  breaker: string
}

export interface Poller<T> {
  samples: T[]
  stop: () => Promise<void>
}

function loop<T> (intervalMs: number, once: () => Promise<T>): Poller<T> {
  const samples: T[] = []
  const state = { stopped: false } // an object: the loop awaits, and stop() flips it meanwhile
  const running = (async () => {
    while (!state.stopped) {
      samples.push(await once())
      await sleep(intervalMs)
    }
  })()
  return {
    samples,
    stop: async () => {
      state.stopped = true
      await running
    }
  }
}

/** Requests `url` every `intervalMs` (one at a time) and records its x-cache. */
export function pollXCache (url: string, intervalMs: number): Poller<Poll> {
  return loop(intervalMs, async () => {
    const sentAt = Date.now()
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(5_000) })
      await response.arrayBuffer()
      return { sentAt, at: Date.now(), status: response.status, cache: response.headers.get('x-cache') ?? 'none' }
    } catch (err) {
      return { sentAt, at: Date.now(), status: 0, cache: `error: ${(err as Error).message}` }
    }
  })
}

/** Samples GET /__stress/stats every `intervalMs`. */
export function pollStats (baseUrl: string, intervalMs: number): Poller<StatsSample | undefined> {
  return loop(intervalMs, async () => {
    try {
      const response = await fetch(`${baseUrl}/__stress/stats`, { signal: AbortSignal.timeout(5_000) })
      return { ...(await response.json() as Omit<StatsSample, 'at'>), at: Date.now() }
    } catch {
      return undefined
    }
  })
}

export async function fetchStats (baseUrl: string): Promise<StatsSample> {
  const response = await fetch(`${baseUrl}/__stress/stats`, { signal: AbortSignal.timeout(10_000) })
  return { ...(await response.json() as Omit<StatsSample, 'at'>), at: Date.now() }
}

/** GETs `url` until it answers x-cache HIT (or gives up); resolves the last x-cache seen. */
export async function warm (url: string, attempts = 50): Promise<string> {
  let label = 'none'
  for (let i = 0; i < attempts && label !== 'HIT'; i++) {
    const response = await fetch(url, { signal: AbortSignal.timeout(10_000) })
    await response.arrayBuffer()
    label = response.headers.get('x-cache') ?? 'none'
    if (label !== 'HIT') await sleep(50)
  }
  return label
}
