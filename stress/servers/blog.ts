// The demo blog in its own process, for the stress runner: a temp SQLite file, its own Redis and prefix. Configured by
// the JSON in STRESS_CONFIG; prints {"stressPort": n} once it listens, and logs (JSON, request logging off) on
// stdout. GET /__stress/stats answers fastify.cache.stats(), so the runner can watch the counters.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify, { LogController } from 'fastify'
import blog from '../../demo-blog/app.js'

export interface BlogServerConfig {
  redisUrl: string
  prefix: string
  slowMs: number
}

const config = JSON.parse(process.env.STRESS_CONFIG ?? '{}') as BlogServerConfig
const dir = mkdtempSync(join(tmpdir(), 'stress-blog-'))
const app = Fastify({
  logger: { level: 'info' },
  logController: new LogController({ disableRequestLogging: true })
})
await app.register(blog, {
  dbPath: join(dir, 'blog.db'),
  redisUrl: config.redisUrl,
  redisProbeMs: 5_000,
  cachePrefix: config.prefix,
  sessionKey: randomBytes(32),
  slowMs: config.slowMs,
  loginRateLimit: { max: 1_000, timeWindow: 60_000 }
})
app.get('/__stress/stats', async () => app.cache.stats())
await app.listen({ host: '127.0.0.1', port: 0 })
const address = app.server.address()
process.stdout.write(JSON.stringify({
  stressPort: typeof address === 'object' && address !== null ? address.port : 0, store: app.cache.storeKind
}) + '\n')
process.once('SIGTERM', () => {
  app.close().finally(() => {
    rmSync(dir, { recursive: true, force: true })
    process.exit(0)
  })
})
