// A user's ESM app on the packed fastify-cache: one cached route, requested, purged by its key, requested again.
// test/package/consumer.test.ts compiles it against the installed tarball and reads the line it prints.
import Fastify from 'fastify'
import fastifyCache, { pageKey, type FastifyCache, type FastifyCacheOptions, type RouteCacheOptions } from 'fastify-cache'

const app = Fastify()
const redisUrl = process.env.REDIS_URL
const options: FastifyCacheOptions = redisUrl === undefined
  ? { store: 'memory' }
  : { redis: redisUrl, prefix: process.env.CACHE_PREFIX ?? 'consumer:' }
await app.register(fastifyCache, options)

// The module augmentation reached the app: `app.cache` and `config.cache` are typed.
const cache: FastifyCache = app.cache
const postCache = { ttl: 30 * 60, tags: (request) => [`post:${String(request.params.id)}`] } satisfies RouteCacheOptions
app.get('/post/:id', { config: { cache: postCache } }, async (request) => ({ post: (request.params as { id: string }).id }))
app.get<{ Params: { id: string } }>('/typed/:id', {
  config: { cache: { ttl: 60, tags: (request) => [`post:${request.params.id}`] } }
}, async (request) => request.params.id)

// Compile-time only (registration would refuse them too): each of these must be a type error, or tsc fails on the
// unused @ts-expect-error.
export function typeErrors (): void {
  // @ts-expect-error a typo: `satisfies RouteCacheOptions` catches it (Fastify alone infers config from the literal)
  app.get('/about', { config: { cache: { tll: 2 * 3600 } satisfies RouteCacheOptions } }, async () => 'about')
  // @ts-expect-error ttl is a number of seconds
  app.get('/bad-ttl', { config: { cache: { ttl: '60' } } }, async () => 'x')
  // @ts-expect-error unless is a function
  app.get('/bad-unless', { config: { cache: { unless: true } } }, async () => 'x')
}

await app.ready()
const first = await app.inject('/post/7')
const second = await app.inject('/post/7')
const deleted: boolean = await cache.delete('view//post/7')
const key: string = pageKey('/post/%37?page=2')
const third = await app.inject('/post/7')
console.log(JSON.stringify({
  xCache: [first, second, third].map((response) => response.headers['x-cache']),
  body: second.json(),
  deleted,
  key
}))
await app.close()
