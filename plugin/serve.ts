import type { FastifyReply, FastifyRequest } from 'fastify'
import type { PageEntry } from './entry.js'
import { ifNoneMatch } from './http-semantics.js'
import type { CacheCounters } from './stats.js'

/** The `x-cache` values; each response of a cached route carries one, and is counted under it, once. */
export type CacheLabel = 'HIT' | 'MISS' | 'BYPASS' | 'STALE'

/** Marks the response with its label and counts it. `from` tells a hit's source apart. */
export function label (
  reply: FastifyReply, counters: CacheCounters, value: CacheLabel, from?: 'store' | 'l1' | 'coalesced'
): void {
  reply.header('x-cache', value)
  if (value === 'HIT') counters.hit(from)
  else if (value === 'MISS') counters.miss()
  else if (value === 'STALE') counters.stale()
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
