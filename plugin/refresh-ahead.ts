import type { FastifyRequest } from 'fastify'
import type { CacheEngine } from './engine.js'
import type { PageEntry } from './entry.js'
import type { RequestKey } from './key.js'
import { refreshInBackground } from './refresh.js'

/** Where refresh-ahead reads the time and draws its chances: the process's, unless a test gives its own. */
export interface Chance {
  now: () => number
  /** Uniform in [0, 1), like Math.random. */
  random: () => number
}

// Read at each call, not bound once, so that a test that replaces Date.now or Math.random is heard.
const PROCESS_CHANCE: Chance = { now: () => Date.now(), random: () => Math.random() }

/**
 * XFetch (Vattani, Chierichetti and Lowenstein, "Optimal Probabilistic Cache Stampede Prevention", VLDB 2015): refresh
 * early when `now - delta * beta * ln(random) >= expiry`, where delta is how long the page took to compute. The closer
 * to expiry and the slower the page, the likelier; an entry that does not know its delta (stored before it was kept)
 * is never refreshed early.
 */
export function xfetch (
  entry: Pick<PageEntry, 'createdAt' | 'ttlMs' | 'computeMs'>, beta: number, now: number, random: number
): boolean {
  const deltaMs = entry.computeMs ?? 0
  return now - deltaMs * beta * Math.log(random) >= entry.createdAt + entry.ttlMs
}

/**
 * Refresh-ahead of one route: a fresh hit close to expiry may start the page's one background refresh (single flight
 * here, the fleet lock across processes), so that a hot page is replaced before it expires instead of after.
 */
export class RefreshAhead {
  readonly #engine: CacheEngine
  readonly #beta: number
  readonly #chance: Chance

  constructor (engine: CacheEngine, beta: number, chance: Chance = PROCESS_CHANCE) {
    this.#engine = engine
    this.#beta = beta
    this.#chance = chance
  }

  /** Called on every hit of the route: refreshes in the background when XFetch says so. The hit is served anyway. */
  onHit (request: FastifyRequest, key: RequestKey, entry: PageEntry): void {
    if (xfetch(entry, this.#beta, this.#chance.now(), this.#chance.random())) refreshInBackground(this.#engine, request, key)
  }
}
