// Short form of stress scenario 2: Redis hung (CLIENT PAUSE ALL). Correctness only; the latency bound is measured by
// `npm run test:stress`.
import t from 'tap'
import { Redis } from 'ioredis'
import { ownRedisForTest, pluginLines, rightBody, sleep, stressApp } from './fixtures/helpers.js'
import { fleetLocks } from '../helpers/redis.js'

t.test('Redis paused: every request is answered 200 with its own page, computed, before the pause ends', async (t) => {
  const redis = await ownRedisForTest(t)
  const { app, lines } = await stressApp(t, redis.url, { lookupTimeoutMs: 50, breaker: { threshold: 3, cooldownMs: 2_000 } }, 5)
  t.equal((await app.inject('/slow/hot')).headers['x-cache'], 'MISS')
  t.equal((await app.inject('/slow/hot')).headers['x-cache'], 'HIT', 'the page is cached before the pause')

  const admin = new Redis(redis.url)
  const bystander = new Redis(redis.url)
  t.teardown(() => { admin.disconnect(); bystander.disconnect() })
  await bystander.ping()
  await admin.client('PAUSE', 3_000, 'ALL')
  // Answered only once the pause is over: every response that arrives before it did not wait for Redis.
  let pauseOver = false
  const marker = bystander.ping().then(() => { pauseOver = true })

  const concurrent = await Promise.all([
    ...Array.from({ length: 10 }, async () => await app.inject('/slow/hot')),
    ...Array.from({ length: 10 }, async (_unused, i) => await app.inject(`/slow/cold-${i}`))
  ])
  const sequential = []
  for (let i = 0; i < 5; i++) sequential.push(await app.inject('/slow/hot'))
  t.equal(pauseOver, false, 'every response arrived while Redis was still paused')

  const all = [...concurrent, ...sequential]
  t.ok(all.every((response) => response.statusCode === 200), 'all answered 200')
  t.ok(all.every(rightBody), 'each with the body its own handler renders')
  const hot = concurrent.slice(0, 10)
  t.equal(hot.filter((response) => response.headers['x-cache'] === 'MISS').length, 1,
    'the cached page was computed again, once, for the concurrent requests (the others shared it)')
  t.ok(sequential.every((response) => response.headers['x-cache'] === 'MISS'), 'later requests: MISS (the store is skipped)')
  t.ok(concurrent.slice(10).every((response) => response.headers['x-cache'] === 'MISS'), 'cold pages: MISS')
  const stats = app.cache.stats()
  t.ok(stats.errors >= 1, `lookup timeouts counted (${stats.errors})`)
  t.not(stats.breaker, 'closed', 'the breaker opened')
  t.ok(pluginLines(lines).some((line) => String(line.msg).includes('circuit breaker open')))

  await marker
  await sleep(300) // the commands queued during the pause have run
  // Lock acquisitions that timed out on our side still ran in Redis once the pause ended: nobody holds their token.
  const orphans = await fleetLocks(admin, 'stress-test:')
  t.same(orphans, [], 'no fleet lock is left behind by requests that gave up on it')
  let label: unknown
  for (let attempt = 0; attempt < 100 && label !== 'HIT'; attempt++) {
    await sleep(50)
    label = (await app.inject('/slow/hot')).headers['x-cache']
  }
  t.equal(label, 'HIT', 'hits resume once the pause is over')
})

t.test('a request that ends while the breaker is open releases its fleet lock', async (t) => {
  const redis = await ownRedisForTest(t)
  const admin = new Redis(redis.url)
  t.teardown(() => admin.disconnect())
  const { app } = await stressApp(t, redis.url, { lookupTimeoutMs: 50, lockTimeoutMs: 2_000, breaker: { threshold: 1, cooldownMs: 300 } }, 300)
  const computing = app.inject('/slow/page') // holds the page's fleet lock for 300 ms
  await sleep(100)
  await admin.client('PAUSE', 200, 'ALL')
  const other = await app.inject('/slow/other') // its lookup times out: the breaker opens
  t.equal(other.statusCode, 200)
  t.not(app.cache.stats().breaker, 'closed', 'the breaker is open when the first request ends')
  const first = await computing
  t.ok(first.statusCode === 200 && rightBody(first))
  await sleep(100)
  t.same(await fleetLocks(admin, 'stress-test:'), [], 'its lock is released (or the next request waits out lockTimeoutMs)')
  await sleep(400) // the breaker half-opens
  const next = await app.inject('/slow/page')
  t.ok(next.statusCode === 200 && rightBody(next), 'the next request still gets its page')
})
