import type { FastifyReply, FastifyRequest } from 'fastify'
import { originFreshMs } from './cache-control.js'
import { invalidOption } from './errors.js'
import { isTagList } from './keyspace.js'
import type { NormalizedRouteOptions } from './options.js'

/** The reply's slot for what its handler decided; null (or undefined, in a context older than the plugin) until then. */
export const kHandlerDecisions = Symbol('fastify-cache.handlerDecisions')

/** What one handler decided about its response's entry, from the data it computed. */
export interface HandlerDecisions {
  /** Milliseconds, 0 for "do not store"; undefined when the handler left the TTL to the route. */
  ttlMs: number | undefined
  /** Added to the route's tags. A Set: a tag given twice is indexed once. */
  readonly tags: Set<string>
}

declare module 'fastify' {
  interface FastifyReply {
    /**
     * The TTL of this response's cache entry, in seconds, over the route's `ttl` (and `'origin'`). 0: do not store
     * this response. Without effect on a route that is not cached, or a request that bypasses the cache.
     */
    cacheTtl: (seconds: number) => FastifyReply
    /** Tags for this response's cache entry, added to the route's `tags`. Without effect where nothing is stored. */
    cacheTags: (...tags: string[]) => FastifyReply
    [kHandlerDecisions]: HandlerDecisions | null | undefined
  }
}

function decisionsOf (reply: FastifyReply): HandlerDecisions {
  let decisions = reply[kHandlerDecisions]
  if (decisions == null) {
    decisions = { ttlMs: undefined, tags: new Set() }
    reply[kHandlerDecisions] = decisions
  }
  return decisions
}

/**
 * `reply.cacheTtl(seconds)`. A wrong argument is a bug of the caller wherever it runs, so it throws even where the
 * decision would have no effect. 0 means "not stored", as Next.js reads `revalidate: 0`; the route option `ttl`
 * refuses 0 instead, because Flask-Caching reads `timeout=0` as "never expires".
 */
export function cacheTtl (this: FastifyReply, seconds: number): FastifyReply {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) {
    throw invalidOption('reply.cacheTtl(seconds)', `expected a finite number of seconds >= 0 (0: do not store), got ${String(seconds)}`)
  }
  decisionsOf(this).ttlMs = seconds * 1000
  return this
}

/** `reply.cacheTags(...tags)`: checked as every other tag list is. */
export function cacheTags (this: FastifyReply, ...tags: string[]): FastifyReply {
  if (!isTagList(tags)) throw invalidOption('reply.cacheTags(...tags)', 'expected non-empty strings')
  const decided = decisionsOf(this).tags
  for (const tag of tags) decided.add(tag)
  return this
}

/**
 * The entry's TTL in milliseconds, by whose word counts: the handler's, then the response's own `cache-control` on a
 * `ttl: 'origin'` route, then the route's. 0: the response is not stored.
 */
export function entryTtlMs (route: NormalizedRouteOptions, reply: FastifyReply): number {
  const decided = reply[kHandlerDecisions]?.ttlMs
  if (decided !== undefined) return decided
  if (!route.ttlFromOrigin) return route.ttlMs
  return originFreshMs(reply.getHeader('cache-control'), reply.getHeader('age')) ?? route.ttlMs
}

/** The route's tags and the handler's, each once. */
export function entryTags (route: NormalizedRouteOptions, request: FastifyRequest, reply: FastifyReply): readonly string[] {
  const routeTags = typeof route.tags === 'function' ? route.tags(request, reply) : route.tags ?? []
  const decided = reply[kHandlerDecisions]?.tags
  if (decided === undefined || decided.size === 0) return routeTags
  return [...new Set([...routeTags, ...decided])]
}
