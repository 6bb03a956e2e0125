import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { pagesToWarm, warmBlog } from '../../demo-blog/lib/warm.js'
import { logCollector } from '../helpers/app.js'
import { freePort, redisForTest } from '../helpers/redis.js'
import { buildBlog, Visitor } from './fixtures/blog.js'

// The blog warms its first pages on start (server.ts calls warmBlog once it listens).

t.test('the index, the about page and the newest published posts are warmed; the first visitors get hits', async (t) => {
  const redis = await redisForTest(t)
  const logs = logCollector()
  const app = await buildBlog(t, redis, { fastify: { logger: logs.logger } })
  const paths = pagesToWarm(app)
  t.same(paths, ['/', '/about', '/post/4', '/post/3', '/post/2', '/post/1'], 'newest first; the draft is not among them')
  t.same(pagesToWarm(app, 2), ['/', '/about', '/post/4', '/post/3'])
  await warmBlog(app)
  t.ok(logs.lines.some((line) => line.msg === 'cache warmed: 6 pages' && line.stored === 6), 'logged')
  const reader = new Visitor(app)
  for (const path of paths) t.equal((await reader.get(path)).headers['x-cache'], 'HIT', path)
})

t.test('with Redis gone, warming logs what was not stored and resolves: the blog carries on', async (t) => {
  const redis = await redisForTest(t, [], { own: true })
  const logs = logCollector()
  const app = await buildBlog(t, redis, {
    cacheOptions: { lookupTimeoutMs: 100, operationTimeoutMs: 200 }, fastify: { logger: logs.logger }
  })
  await redis.kill()
  await warmBlog(app)
  const warning = logs.lines.find((line) => typeof line.msg === 'string' && line.msg.startsWith('cache warming:'))
  t.match(warning, { level: 40, stored: 0, msg: 'cache warming: 0 pages stored, 6 not' })
  t.match((warning?.failed as unknown[])[0], { path: '/', error: /^not stored/ })
  t.equal((await new Visitor(app).get('/about')).statusCode, 200, 'pages are served all the same')
  // Back before the blog closes: closing its client on a dead server is another test's matter.
  await redis.restart()
  for (let attempt = 0; attempt < 100 && await app.redis.ping().catch(() => undefined) !== 'PONG'; attempt++) await sleep(50)
})

t.test('no Redis at startup: the blog runs on the memory store, and warms it', async (t) => {
  const logs = logCollector()
  const app = await buildBlog(t, undefined, {
    redisUrl: `redis://127.0.0.1:${await freePort()}`, redisProbeMs: 200, fastify: { logger: logs.logger }
  })
  t.equal(app.cache.storeKind, 'memory')
  await warmBlog(app)
  t.ok(logs.lines.some((line) => line.msg === 'cache warmed: 6 pages'))
  t.equal((await new Visitor(app).get('/')).headers['x-cache'], 'HIT')
})

t.test('a warming that throws is logged, never thrown', async (t) => {
  const logs = logCollector()
  const app = await buildBlog(t, undefined, { redisUrl: undefined, fastify: { logger: logs.logger } })
  app.cache.warm = async () => { throw new Error('no warming today') }
  await warmBlog(app)
  t.ok(logs.lines.some((line) => line.level === 40 && line.msg === 'cache warming failed; pages are cached on their first visit'))
})
