// The plain app the stress scenarios load: one route per way of keying (whole query, one parameter, a `vary` header,
// path parameters) and a slow route with a known handler time. Every response says, in a header computed for *this*
// request, what its body must be; a body that does not match (a truncated entry, another variant's page) is caught.
import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance, FastifyRequest } from 'fastify'

/** The header naming what this request's body must be: `<route>:<digest of what the handler saw>`. */
export const EXPECT_HEADER = 'x-stress-expect'
/** Bytes of padding after the tag on /item and /slow, so that a truncated entry is visible. */
export const ITEM_PAD = 200

export interface StressRoutesOptions {
  /** Simulated work of /slow/:id, in milliseconds. */
  handlerMs: number
}

function digest (value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value ?? null)).digest('hex').slice(0, 32)
}

/** A stable form of a parsed query: names sorted, values as parsed (a string or a list in order). */
function sortedQuery (query: unknown): Array<[string, unknown]> {
  const object = (query ?? {}) as Record<string, unknown>
  return Object.keys(object).sort().map((name) => [name, object[name]])
}

type Route = 'q' | 'page' | 'lang' | 'item' | 'slow'

function routeOf (request: FastifyRequest): Route | undefined {
  const url = request.routeOptions.url
  if (url === '/q') return 'q'
  if (url === '/page') return 'page'
  if (url === '/lang') return 'lang'
  if (url === '/item/:id') return 'item'
  if (url === '/slow/:id') return 'slow'
  return undefined
}

/** What the handler of `route` renders for this request: a function of what Fastify handed it, and nothing else. */
export function tagOf (route: Route, request: FastifyRequest): string {
  switch (route) {
    case 'q': return `q:${digest(sortedQuery(request.query))}`
    case 'page': return `page:${digest((request.query as Record<string, unknown>).page)}`
    case 'lang': return `lang:${digest(request.headers['accept-language'])}`
    default: return `${route}:${digest((request.params as { id: string }).id)}`
  }
}

/** The body /item/:id renders for `id` (as Fastify decodes it). */
export function itemBody (id: string): string {
  return bodyOf(`item:${digest(id)}`)
}

export function bodyOf (tag: string): string {
  const padded = tag.startsWith('item:') || tag.startsWith('slow:')
  return padded ? `${tag}\n${'x'.repeat(ITEM_PAD)}` : `${tag}\n`
}

/**
 * Checks a 200 response against the tag its own request produced. Returns 'ok', 'garbage' (a body that is not what
 * the handler renders for this request) or 'unchecked' (no tag: not one of our routes).
 */
export function verify (expected: string | string[] | undefined, body: string): 'ok' | 'garbage' | 'unchecked' {
  if (typeof expected !== 'string') return 'unchecked'
  return body === bodyOf(expected) ? 'ok' : 'garbage'
}

export function registerStressRoutes (app: FastifyInstance, options: StressRoutesOptions): void {
  // Runs for every response, hits included (they are sent from onRequest and go through onSend too).
  app.addHook('onSend', async (request, reply, payload) => {
    const route = routeOf(request)
    if (route !== undefined) reply.header(EXPECT_HEADER, tagOf(route, request))
    return payload
  })
  const text = (tag: string): string => bodyOf(tag)
  app.get('/q', { config: { cache: { ttl: 300, queryString: true } } }, async (request, reply) => {
    return await reply.type('text/plain').send(text(tagOf('q', request)))
  })
  app.get('/page', { config: { cache: { ttl: 300, queryString: ['page'] } } }, async (request, reply) => {
    return await reply.type('text/plain').send(text(tagOf('page', request)))
  })
  app.get('/lang', { config: { cache: { ttl: 300, vary: ['accept-language'] } } }, async (request, reply) => {
    return await reply.type('text/plain').send(text(tagOf('lang', request)))
  })
  app.get('/item/:id', { config: { cache: { ttl: 300 } } }, async (request, reply) => {
    return await reply.type('text/plain').send(text(tagOf('item', request)))
  })
  app.get('/slow/:id', { config: { cache: { ttl: 300 } } }, async (request, reply) => {
    await sleep(options.handlerMs)
    return await reply.type('text/plain').send(text(tagOf('slow', request)))
  })
  app.get('/__stress/stats', async () => app.cache.stats())
}
