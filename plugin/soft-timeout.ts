import type { FastifyRequest } from 'fastify'
import type { CacheEngine } from './engine.js'
import { freshForMs, type PageEntry } from './entry.js'
import type { RequestKey } from './key.js'
import { pageId } from './keyspace.js'
import type { Outcome } from './lookup.js'
import { refreshInBackground } from './refresh.js'
import type { Flight } from './single-flight.js'
import { withTimeout } from './timeout.js'

/**
 * FusionCache's factory soft timeout, on the fleet's refresh machinery. A request that finds only a page within grace
 * does not run the handler itself: it starts (or joins) the page's one background refresh and waits for it up to
 * `softTimeoutMs`. In time, it is served the fresh page; otherwise, or when the refresh fails, the stale one, while the
 * refresh goes on and stores its page when it ends. The hard limit is the refresh's own (`lockTimeoutMs`, refresh.ts).
 * Undefined: a purge ran meanwhile, so the stale page may be what it removed; the request computes the page itself.
 */
export async function withinSoftTimeout (
  engine: CacheEngine, request: FastifyRequest, key: RequestKey, stale: PageEntry, softTimeoutMs: number
): Promise<Outcome | undefined> {
  const generation = engine.invalidation.generation
  // A request of this process computing the page already (a forced update, say) is waited on the same way.
  const computing: Promise<unknown> = refreshInBackground(engine, request, key) ??
    (engine.flights.get(pageId(key.storeKey, key.variant)) as Flight<PageEntry>).promise
  const ended = await withTimeout(computing, softTimeoutMs, 'softTimeout').then(() => true, () => false)
  if (generation !== engine.invalidation.generation) return undefined
  if (!ended) return { kind: 'stale', entry: stale, refresh: false }
  // The computation wrote its page before it ended, on the connection this read goes out on: the read finds it. One
  // that failed, or that another process holds, leaves the stale page: grace serves it.
  const fresh = await readFresh(engine, request, key)
  return fresh === undefined ? { kind: 'stale', entry: stale, refresh: false } : { kind: 'hit', entry: fresh, from: 'coalesced' }
}

async function readFresh (engine: CacheEngine, request: FastifyRequest, key: RequestKey): Promise<PageEntry | undefined> {
  const bytes = (await engine.pages.read(key.storeKey, key.variant, request.log))?.value
  if (bytes === undefined) return undefined
  const entry = engine.pages.decode(bytes, request.log)
  return entry !== undefined && freshForMs(entry, Date.now()) > 0 ? entry : undefined
}
