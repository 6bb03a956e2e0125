// Compile-time checks, run by test/plugin/types.test.ts through `tsc --noEmit`. Every @ts-expect-error must error.
import Fastify from 'fastify'
import type {} from '@fastify/secure-session'
import fastifyCache, { type CacheStats, type FastifyCache } from '../../plugin/index.js'

const app = Fastify()
await app.register(fastifyCache, { prefix: 'fancycache:', defaultTtl: 300 })

// The shapes DESIGN.md promises, its lines as written (the session is @fastify/secure-session's, as in the demo blog).
app.get('/', { config: { cache: { ttl: 20 * 60, unless: (req) => Boolean(req.session.get('user')) } } }, async () => 'index')
app.get('/cookie', { config: { cache: { ttl: 20 * 60, unless: (request) => request.headers.cookie !== undefined } } }, async () => 'index')
app.get('/about', { config: { cache: { ttl: 2 * 3600 } } }, async () => 'about')
// DESIGN.md's own line, as written: `req.params` needs no cast.
app.get('/post/:id', { config: { cache: { ttl: 30 * 60, tags: (req) => [`post:${req.params.id}`] } } }, async () => 'post')
// And beside the route's own generics; the query string reads the same way.
app.get<{ Params: { id: string } }>('/typed/:id', {
  config: { cache: { tags: (req) => [`post:${req.params.id}`], key: (req) => `typed/${String(req.query.lang)}` } }
}, async (request) => request.params.id)
app.get('/feed', { config: { cache: true } }, async () => 'feed')
app.get('/q', { config: { cache: { queryString: ['page'], vary: ['accept-language'], statusCodes: [200, 404] } } }, async () => 'q')
app.get('/f', { config: { cache: { forceUpdate: true, filter: (_request, _reply, payload) => payload.length > 0, key: 'custom' } } }, async () => 'f')
app.get('/s', { config: { cache: { staleWhileRevalidate: 60, grace: 600, key: (request) => `k/${request.url}` } } }, async () => 's')

// @ts-expect-error ttl is a number of seconds
app.get('/bad-ttl', { config: { cache: { ttl: '60' } } }, async () => 'x')
// …or the word 'origin', and the handler decides with reply.cacheTtl / reply.cacheTags, which chain.
app.get('/origin', { config: { cache: { ttl: 'origin' } } }, async (_request, reply) => reply.cacheTtl(60).cacheTags('a', 'b').send('x'))
// @ts-expect-error cacheTtl takes seconds
app.get('/bad-cache-ttl', async (_request, reply) => reply.cacheTtl('60'))
// @ts-expect-error cacheTags takes strings
app.get('/bad-cache-tags', async (_request, reply) => reply.cacheTags(['a']))
// @ts-expect-error unless is a function
app.get('/bad-unless', { config: { cache: { unless: true } } }, async () => 'x')
// @ts-expect-error statusCodes are numbers
app.get('/bad-codes', { config: { cache: { statusCodes: ['200'] } } }, async () => 'x')
// @ts-expect-error queryString is true, false or names
app.get('/bad-qs', { config: { cache: { queryString: 'page' } } }, async () => 'x')
// @ts-expect-error tags are a list or a function
app.get('/bad-tags', { config: { cache: { tags: 'post' } } }, async () => 'x')
// Fastify infers a route's config type from the literal, so unknown names (Flask's `timeout`) and non-objects are
// caught at registration instead, with FST_CACHE_INVALID_OPTION (test/plugin/options.test.ts).

// @ts-expect-error prefix is a string
await app.register(fastifyCache, { prefix: 1 })
// @ts-expect-error store is 'redis', 'memory' or a CacheStore
await app.register(fastifyCache, { store: 'memcached' })

const cache: FastifyCache = app.cache
const stats: CacheStats = cache.stats()
const ratio: number = stats.hitRatio
const value: Promise<{ a: number } | undefined> = cache.get<{ a: number }>('k')
const square = cache.memoize(async (n: number) => n * n, { name: 'square' })
const squared: Promise<number> = square(2)
// @ts-expect-error the memoized function keeps its parameter types
square('two').catch(() => {})
cache.deleteMemoized(square, 2).catch(() => {})
const wrapped: Promise<string> = cache.wrap('key', async () => 'v', { ttl: 60 })
const warmed: Promise<{ stored: number, failed: Array<{ path: string, error: string }> }> = cache.warm(['/'], { concurrency: 2 })
// @ts-expect-error warm takes a list of paths
cache.warm('/').catch(() => {})
console.log(warmed)
console.log(ratio, value, squared, wrapped)
