import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import t from 'tap'
import { logCollector } from '../helpers/app.js'
import { freePort, redisForTest } from '../helpers/redis.js'
import { admin, buildBlog, csrfOf, tempDir, Visitor } from './fixtures/blog.js'

const redis = await redisForTest(t)

t.test('no Redis answering: the blog starts on the memory store and says so', async (t) => {
  const logs = logCollector()
  const port = await freePort()
  const app = await buildBlog(t, undefined, {
    redisUrl: `redis://127.0.0.1:${port}`, redisProbeMs: 1_000, fastify: { logger: logs.logger }
  })
  t.equal(app.cache.storeKind, 'memory')
  t.notOk(app.hasDecorator('redis'), 'no Redis client is left behind')
  const warning = logs.lines.find((line) => line.level === 40)
  t.match(warning?.msg, new RegExp(`Redis at redis://127\\.0\\.0\\.1:${port}/? did not answer within 1000 ms: caching in process memory`))
  t.ok(logs.lines.some((line) => line.msg === 'cache store: memory'), 'the store in use is logged')
  const first = await app.inject('/about')
  t.equal(first.headers['x-cache'], 'MISS')
  t.equal((await app.inject('/about')).headers['x-cache'], 'HIT', 'and caches in memory')
})

t.test('with Redis, the store is redis and keys live under the configured prefix', async (t) => {
  const logs = logCollector()
  const app = await buildBlog(t, redis, { cachePrefix: `${redis.prefix}blog:`, fastify: { logger: logs.logger } })
  t.equal(app.cache.storeKind, 'redis')
  t.ok(logs.lines.some((line) => line.msg === 'cache store: redis' && line.prefix === `${redis.prefix}blog:`))
  await app.inject('/about')
  const stored = await app.redis.keys(`${redis.prefix}blog:*`)
  t.same(stored, [`${redis.prefix}blog:view//about`], 'the page key, under the prefix')
})

t.test('an existing Redis client is used and left open', async (t) => {
  const client = new Redis(redis.url)
  t.teardown(() => client.disconnect())
  const app = await buildBlog(t, undefined, { redis: client, redisUrl: undefined })
  t.equal(app.cache.storeKind, 'redis')
  await app.inject('/about')
  t.equal((await app.inject('/about')).headers['x-cache'], 'HIT')
  await app.close()
  t.equal(await client.ping(), 'PONG', 'the blog did not close a client it did not open')
})

t.test('first start creates, migrates and seeds the database (WAL); later starts keep what is there', async (t) => {
  const dir = join(tempDir(t), 'nested', 'data')
  const dbPath = join(dir, 'blog.db')
  const options = { dataDir: dir, dbPath, adminUser: 'fancy', adminPassword: 'flask-caching' }
  const first = await buildBlog(t, redis, options)
  t.ok(existsSync(dbPath), 'the file and its directories were created')
  t.equal(first.db.$client.pragma('journal_mode', { simple: true }), 'wal', 'WAL mode')
  const migrations = first.db.$client.prepare('select count(*) as n from __drizzle_migrations').get() as { n: number }
  t.equal(migrations.n, 2, 'both drizzle migrations were applied (init, sessions)')
  t.equal(first.users.count(), 1)
  t.equal(first.posts.listAll().length, 5, 'seeded posts')
  t.equal(first.posts.listAll().filter((post) => post.published).length, 4, 'one of them a draft')
  t.ok(first.posts.listAll().some((post) => /[\u4e00-\u9fff]/.test(post.title)), 'one in Chinese')
  t.equal((await new Visitor(first).login('fancy', 'flask-caching')).statusCode, 302, 'the admin comes from the options')
  first.posts.delete(2)
  await first.close()

  const second = await buildBlog(t, redis, { ...options, adminPassword: 'another' })
  t.equal(second.users.count(), 1, 'no second admin')
  t.equal(second.posts.listAll().length, 4, 'no reseeding: the deleted post stays deleted')
  t.equal((await new Visitor(second).login('fancy', 'flask-caching')).statusCode, 302, 'the stored password still works')
})

t.test('without SESSION_KEY, a key is generated once in the data dir and sessions survive a restart', async (t) => {
  const dir = tempDir(t)
  const options = { dataDir: dir, dbPath: join(dir, 'blog.db'), sessionKey: undefined }
  const first = await buildBlog(t, redis, options)
  t.ok(existsSync(join(dir, 'session-key')))
  const editor = await admin(first)
  t.equal((await editor.get('/admin')).statusCode, 200)
  await first.close()

  const second = await buildBlog(t, redis, options)
  const returning = new Visitor(second)
  for (const [name, value] of editor.cookies) returning.cookies.set(name, value)
  t.equal((await returning.get('/admin')).statusCode, 200, 'the same cookie is still a login')

  const stranger = await buildBlog(t, redis, { sessionKey: Buffer.alloc(32, 7) })
  const elsewhere = new Visitor(stranger)
  for (const [name, value] of editor.cookies) elsewhere.cookies.set(name, value)
  t.equal((await elsewhere.get('/admin')).statusCode, 302, 'another key does not accept it')
})

t.test('the stats sampler runs on its own timer', async (t) => {
  const app = await buildBlog(t, redis, { statsIntervalMs: 10 })
  await app.inject('/about')
  await app.inject('/about')
  // Waits for the timer, however slow the machine; asserts what it recorded, never when.
  const recorded = (): { hits: number, misses: number } => app.cacheHistory.samples()
    .reduce((sum, s) => ({ hits: sum.hits + s.hits, misses: sum.misses + s.misses }), { hits: 0, misses: 0 })
  for (let i = 0; i < 500 && recorded().hits === 0; i++) await sleep(20)
  t.same(recorded(), { hits: 1, misses: 1 }, 'the two requests, sampled by the timer')
  t.ok(app.cacheHistory.samples().some((s) => s.ratio !== null), 'with a ratio for the chart')
})

t.test('a purge that fails is reported and retried until the store takes it', async (t) => {
  const app = await buildBlog(t, redis)
  const reader = new Visitor(app)
  const editor = await admin(app)
  await reader.get('/post/1')
  // The edit keeps the post published: its tag is the whole purge (the index pages that list it carry it).
  const realInvalidateTags = app.cache.invalidateTags.bind(app.cache)
  let failures = 1
  app.cache.invalidateTags = async (tags) => {
    if (failures-- > 0) throw Object.assign(new Error('store down'), { code: 'FST_CACHE_STORE' })
    return await realInvalidateTags(tags)
  }
  const _csrf = await editor.csrfFrom('/admin/post/1/edit')
  const response = await editor.post('/admin/post/1/edit', { _csrf, title: 'Edited while the store was down', body: 'b', published: 'on' })
  t.equal(response.statusCode, 302, 'the edit is saved anyway')
  t.equal(app.posts.get(1)?.title, 'Edited while the store was down')
  t.match((await editor.get('/admin')).body, /The cache did not answer/, 'the admin is warned')
  t.same([...app.pendingPurges].sort(), ['tag post:1'])
  t.match((await editor.get('/admin/cache')).body, /Purges waiting for the store/)

  app.sampleCacheStats()
  for (let i = 0; i < 200 && app.pendingPurges.size > 0; i++) await sleep(10)
  t.equal(app.pendingPurges.size, 0, 'the retry went through')
  const post = await reader.get('/post/1')
  t.match(post.body, /Edited while the store was down/, 'and readers get the new page')
  t.ok(csrfOf((await editor.get('/admin/cache')).body))
})
