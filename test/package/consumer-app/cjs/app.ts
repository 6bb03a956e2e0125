// The same app compiled to CommonJS: `require('fastify-cache')` of an ES module, which Node allows from 20.19
// (require(esm)). test/package/consumer.test.ts type-checks it, and runs it where Node supports that.
import Fastify from 'fastify'
import fastifyCache, { type FastifyCache, type RouteCacheOptions } from 'fastify-cache'

async function main (): Promise<void> {
  const app = Fastify()
  await app.register(fastifyCache, { store: 'memory' })
  const cache: FastifyCache = app.cache
  const postCache = { ttl: 30 * 60 } satisfies RouteCacheOptions
  app.get('/post/:id', { config: { cache: postCache } }, async (request) => ({ post: (request.params as { id: string }).id }))
  await app.ready()
  const first = await app.inject('/post/7')
  const second = await app.inject('/post/7')
  const deleted = await cache.delete('view//post/7')
  console.log(JSON.stringify({ xCache: [first, second].map((response) => response.headers['x-cache']), deleted }))
  await app.close()
}

// Compile-time only: a typo in the options must be a type error under `satisfies RouteCacheOptions`.
export function typeErrors (): RouteCacheOptions {
  // @ts-expect-error `tll` is not an option
  return { tll: 60 } satisfies RouteCacheOptions
}

main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
