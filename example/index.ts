// The smallest app that uses fastify-cache: one route cached for 10 seconds. With REDIS_URL set the pages live in
// Redis; without it, in the process's memory.
import Fastify from 'fastify'
import fastifyCache from 'fastify-cache'

const app = Fastify({ logger: true })
await app.register(fastifyCache, process.env.REDIS_URL === undefined ? {} : { redis: process.env.REDIS_URL })

app.get('/time', { config: { cache: { ttl: 10 } } }, async () => ({ now: new Date().toISOString() }))

await app.listen({ port: Number(process.env.PORT ?? 3000), host: process.env.HOST ?? '127.0.0.1' })
