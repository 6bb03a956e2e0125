import type { FastifyRequest } from 'fastify'
import type { CacheEngine } from './engine.js'
import type { RequestKey } from './key.js'
import { pageId } from './keyspace.js'
import { withTimeout } from './timeout.js'

/** Marks a background refresh request; its value must be the process's token. */
export const REFRESH_HEADER = 'x-fastify-cache-revalidate'

// Never copied into a background refresh: they belong to the visitor, not to the page.
const PRIVATE_REQUEST_HEADERS = new Set([
  'cookie', 'authorization', 'proxy-authorization', 'host', 'content-length', 'connection', 'if-none-match',
  'if-modified-since', REFRESH_HEADER
])

/** Whether a request is this process's own background refresh (which recomputes the page, ignoring what is stored). */
export function isRefresh (request: FastifyRequest, engine: CacheEngine): boolean {
  return request.headers[REFRESH_HEADER] === engine.refreshToken
}

/**
 * Refreshes a page once across the fleet, in the background, through the app itself: an anonymous GET of the same URL
 * with the same headers, minus the visitor's own. Resolves (never rejects) when the refresh this process runs for the
 * page has ended, whoever started it; undefined when a request of this process is computing the page already.
 */
export function refreshInBackground (engine: CacheEngine, request: FastifyRequest, key: RequestKey): Promise<void> | undefined {
  const id = pageId(key.storeKey, key.variant)
  if (engine.flights.has(id)) return undefined
  return engine.refreshes.run(id, async () => {
    const headers: Record<string, string | string[]> = {}
    for (const name in request.headers) {
      const value = request.headers[name]
      if (value !== undefined && !PRIVATE_REQUEST_HEADERS.has(name)) headers[name] = value
    }
    headers[REFRESH_HEADER] = engine.refreshToken
    const lock = await engine.locks.lock(key.storeKey, key.variant, request.log)
    if (lock.held) return // another process is refreshing it
    try {
      // The hard limit: past the lock's own lifetime, another refresh may start; this one still stores its page if it
      // ends (unless a purge overtook it).
      await withTimeout(request.server.inject({ method: 'GET', url: request.url, headers }), engine.options.lockTimeoutMs, 'refresh')
    } catch (err) {
      engine.failOpen.warn(request.log, 'revalidate', err, 'fastify-cache: background refresh failed or passed lockTimeoutMs')
    } finally {
      if (lock.token !== undefined) engine.locks.unlock(key.storeKey, key.variant, lock.token, request.log)
    }
  }).promise
}
