import closeWithGrace from 'close-with-grace'
import Fastify from 'fastify'
import blog from './app.js'
import { configFromEnv } from './config.js'
import { warmBlog } from './lib/warm.js'
import { blogServerOptions } from './server-options.js'

const config = configFromEnv(process.env)
const app = Fastify({ ...blogServerOptions, logger: { level: config.logLevel }, trustProxy: config.trustProxy })
await app.register(blog, config.blog)

closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
  if (err !== undefined) app.log.error({ err }, 'closing the blog after an error')
  else app.log.info(`${String(signal)} received: closing the blog`)
  await app.close()
})

const address = await app.listen({ host: config.host, port: config.port })
app.log.info(`blog at ${address} (cache store: ${app.cache.storeKind}, prefix ${app.cache.prefix}; ` +
  `database ${config.blog.dbPath}; admin user ${config.blog.adminUser ?? 'admin'})`)
// Not awaited: the blog serves at once, and a warming that fails only logs (warmBlog never rejects).
warmBlog(app).catch(() => {})
