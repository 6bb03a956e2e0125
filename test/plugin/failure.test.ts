import t from 'tap'
import { Redis } from 'ioredis'
import { build, logCollector } from '../helpers/app.js'
import { redisForTest } from '../helpers/redis.js'

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

t.test('Redis killed: requests still succeed, the breaker opens; Redis back: caching resumes', async (t) => {
  const redis = await redisForTest(t, [], { own: true })
  const { lines, logger } = logCollector()
  const app = await build(t, {
    redis, logger, cache: { lookupTimeoutMs: 50, breaker: { threshold: 3, cooldownMs: 300 }, errorLogIntervalMs: 60_000 }
  })
  let calls = 0
  app.get('/', { config: { cache: { ttl: 60 } } }, async () => `index ${++calls}`)
  await app.ready()
  app.redis.on('error', () => {}) // the app's own client reports reconnection errors; they are expected here
  t.equal((await app.inject('/')).headers['x-cache'], 'MISS')
  t.equal((await app.inject('/')).headers['x-cache'], 'HIT')

  await redis.kill()
  const during = []
  for (let i = 0; i < 30; i++) during.push(await app.inject('/'))
  t.ok(during.every((response) => response.statusCode === 200), 'every request is answered with 200')
  t.ok(during.every((response) => response.body.startsWith('index ')))
  t.ok(during.every((response) => response.headers['x-cache'] !== 'HIT'), 'nothing is served from a dead store')
  const stats = app.cache.stats()
  t.ok(stats.errors >= 3, `errors counted (${stats.errors})`)
  t.ok(stats.skipped > 0, `the open breaker skipped the store (${stats.skipped} times)`)
  t.ok(stats.errors < 30, 'not every request waited on the dead store')
  t.ok(lines.some((line) => String(line.msg).includes('circuit breaker open')), 'the breaker opening is logged')
  const failureLines = lines.filter((line) => line.cacheFailure === 'lookup')
  t.ok(failureLines.length >= 1 && failureLines.length <= 2, `failures are logged, rate-limited (${failureLines.length} lines)`)

  await redis.restart()
  // No request needed: when the connection is ready again the plugin probes at once, with a PING of its own.
  for (let attempt = 0; attempt < 300 && app.redis.status !== 'ready'; attempt++) await sleep(10)
  for (let attempt = 0; attempt < 50 && app.cache.stats().breaker !== 'closed'; attempt++) await sleep(10)
  t.equal(app.cache.stats().breaker, 'closed', 'the probe on reconnect closed the breaker without a request')
  t.ok(lines.some((line) => String(line.msg).includes('caching resumes')))
  let resumed = false
  for (let attempt = 0; attempt < 100 && !resumed; attempt++) {
    await sleep(100)
    const response = await app.inject('/')
    t.equal(response.statusCode, 200)
    resumed = response.headers['x-cache'] === 'HIT'
  }
  t.ok(resumed, 'hits resume once Redis is back')
  t.equal(app.cache.stats().breaker, 'closed')
  t.ok(lines.some((line) => String(line.msg).includes('caching resumes')))
})

t.test('Redis hung (CLIENT PAUSE): a lookup gives up after its budget and the page is computed', async (t) => {
  const redis = await redisForTest(t, [], { own: true })
  const app = await build(t, { redis, cache: { lookupTimeoutMs: 50, breaker: { threshold: 100 } } })
  let calls = 0
  app.get('/p', { config: { cache: true } }, async () => `page ${++calls}`)
  await app.inject('/p')
  t.equal((await app.inject('/p')).headers['x-cache'], 'HIT')
  const admin = new Redis(redis.url)
  t.teardown(async () => await admin.quit())
  await admin.client('PAUSE', 1_500, 'ALL')
  const response = await app.inject('/p')
  // Had the lookup waited for the pause to end, it would have found the entry and answered HIT.
  t.equal(response.statusCode, 200)
  t.equal(response.headers['x-cache'], 'MISS', 'the lookup timed out and the handler ran')
  t.equal(response.body, 'page 2')
  t.ok(app.cache.stats().errors >= 1)
  await admin.client('UNPAUSE')
})

t.test('a write that fails is logged and dropped; the response is unaffected', async (t) => {
  const redis = await redisForTest(t, ['--maxmemory', '1mb', '--maxmemory-policy', 'noeviction'])
  const { lines, logger } = logCollector()
  const app = await build(t, { redis, logger, cache: { errorLogIntervalMs: 60_000 } })
  app.get('/big/:n', { config: { cache: true } }, async () => 'x'.repeat(200_000))
  const responses = []
  for (let i = 0; i < 20; i++) responses.push(await app.inject(`/big/${i}`))
  t.ok(responses.every((response) => response.statusCode === 200 && response.body.length === 200_000))
  await sleep(100)
  const stats = app.cache.stats()
  t.ok(stats.errors > 0, `write errors counted (${stats.errors})`)
  const writeLines = lines.filter((line) => line.cacheFailure === 'write')
  t.equal(writeLines.length, 1, 'one log line for many failed writes')
  t.match(String((writeLines[0]?.err as { message?: string })?.message), /OOM/)
})

t.test('the plugin owns a client opened from a URL and closes it', async (t) => {
  const redis = await redisForTest(t, [], { own: true }) // counts every connection on the server
  const app = await build(t, { cache: { redis: redis.url } })
  app.get('/', { config: { cache: true } }, async () => 'own client')
  await app.inject('/')
  t.equal((await app.inject('/')).headers['x-cache'], 'HIT')
  const admin = new Redis(redis.url)
  t.teardown(async () => await admin.quit())
  const before = String(await admin.client('LIST')).trim().split('\n').length
  await app.close()
  await sleep(100)
  const after = String(await admin.client('LIST')).trim().split('\n').length
  t.equal(after, before - 1, 'its connection is closed')
})

t.test('a client passed in is used and never closed by the plugin', async (t) => {
  const redis = await redisForTest(t)
  const client = new Redis(redis.url)
  t.teardown(async () => await client.quit())
  const app = await build(t, { cache: { redis: client } })
  app.get('/', { config: { cache: true } }, async () => 'given client')
  await app.inject('/')
  t.equal((await app.inject('/')).headers['x-cache'], 'HIT')
  await app.close()
  t.equal(client.status, 'ready')
  t.equal(await client.ping(), 'PONG')
})
