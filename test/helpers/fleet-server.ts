// One app process of a fleet sharing one Redis, for test/plugin/fleet.test.ts. Prints its port on stdout.
import Fastify from 'fastify'
import fastifyRedis from '@fastify/redis'
import fastifyCache from '../../plugin/index.js'

const app = Fastify()
await app.register(fastifyRedis, { url: process.env.REDIS_URL })
await app.register(fastifyCache, { prefix: process.env.CACHE_PREFIX, lookupTimeoutMs: 1_000 })
let handlerRuns = 0
app.get('/cold', { config: { cache: { ttl: 60 } } }, async (_request, reply) => {
  handlerRuns++
  await new Promise((resolve) => setTimeout(resolve, 200))
  return reply.type('text/html').send('<h1>computed once for the fleet</h1>')
})
app.get('/runs', async () => ({ handlerRuns }))
await app.listen({ port: 0, host: '127.0.0.1' })
const address = app.server.address()
process.stdout.write(`${typeof address === 'object' && address !== null ? address.port : 0}\n`)
process.on('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
