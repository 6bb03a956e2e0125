// A plain Fastify app with fastify-cache on one Redis, in its own process, for the stress runner. Configured by the
// JSON in STRESS_CONFIG; prints {"stressPort": n} once it listens, and logs (JSON, request logging off) on stdout.
import fastifyRedis from '@fastify/redis'
import Fastify, { LogController } from 'fastify'
import fastifyCache, { type FastifyCacheOptions } from '../../plugin/index.js'
import { registerStressRoutes } from '../lib/app-routes.js'

export interface AppServerConfig {
  redisUrl: string
  prefix: string
  handlerMs: number
  cache?: Omit<FastifyCacheOptions, 'prefix' | 'redis' | 'store'>
}

const config = JSON.parse(process.env.STRESS_CONFIG ?? '{}') as AppServerConfig
const app = Fastify({
  logger: { level: 'info' },
  logController: new LogController({ disableRequestLogging: true })
})
// The app's own client: ioredis reports every reconnection attempt as an error; the plugin reports store failures.
await app.register(fastifyRedis, { url: config.redisUrl, maxRetriesPerRequest: 1, connectTimeout: 2_000 })
app.redis.on('error', () => {})
await app.register(fastifyCache, { ...config.cache, prefix: config.prefix })
registerStressRoutes(app, { handlerMs: config.handlerMs })
await app.listen({ host: '127.0.0.1', port: 0 })
const address = app.server.address()
process.stdout.write(JSON.stringify({ stressPort: typeof address === 'object' && address !== null ? address.port : 0 }) + '\n')
process.once('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
