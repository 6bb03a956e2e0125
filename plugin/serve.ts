import type { FastifyReply, FastifyRequest } from 'fastify'
import type { PageEntry } from './entry.js'
import { ifNoneMatch } from './http-semantics.js'
import { cacheStatusOf, type CacheEvent } from './cache-status.js'
import type { NormalizedOptions } from './options.js'
import type { CacheCounters } from './stats.js'

/**
 * Marks a response with what happened to it (`x-cache`, `cache-status`, each unless turned off) and counts it: every
 * response of a cached route is marked, and counted under its `x-cache`, exactly once.
 */
export function mark (
  reply: FastifyReply, engine: { counters: CacheCounters, options: NormalizedOptions }, event: CacheEvent
): void {
  if (engine.options.xCache) reply.header('x-cache', event.label)
  if (engine.options.cacheStatus) reply.header('cache-status', cacheStatusOf(event))
  const counters = engine.counters
  if (event.label === 'HIT') counters.hit(event.from)
  else if (event.label === 'MISS') counters.miss()
  else if (event.label === 'STALE') counters.stale()
  else counters.bypass()
}

/** The stored status and headers, with the entry's etag and age. */
export function restore (reply: FastifyReply, entry: PageEntry): void {
  reply.code(entry.status)
  reply.headers(entry.headers)
  reply.header('etag', entry.etag)
  reply.header('age', String(Math.max(0, Math.floor((Date.now() - entry.createdAt) / 1000))))
}

/** Answers from the cache, from the hook: a 304 when the client holds this entity already. */
export function serveEntry (request: FastifyRequest, reply: FastifyReply, entry: PageEntry): FastifyReply {
  restore(reply, entry)
  if (entry.status === 200 && ifNoneMatch(request.headers['if-none-match'], entry.etag)) {
    reply.code(304)
    return reply.send()
  }
  return reply.send(entry.body)
}

/** Grace: the handler failed, so the last good response goes out instead (from onSend: its body is the payload). */
export function serveGrace (request: FastifyRequest, reply: FastifyReply, stale: PageEntry): Buffer {
  request.log.warn({ statusCode: reply.statusCode, url: request.url },
    'fastify-cache: the handler failed; serving the last good response within grace')
  for (const name of Object.keys(reply.getHeaders())) reply.removeHeader(name)
  restore(reply, stale)
  return stale.body
}
