// Short form of stress scenario 4: Redis full (maxmemory, noeviction). Writes fail; pages are still served; errors
// are counted and logged without flooding.
import t from 'tap'
import { Redis } from 'ioredis'
import { census } from '../../stress/lib/redis.js'
import { ownRedisForTest, pluginLines, rightBody, stressApp } from './fixtures/helpers.js'

t.test('Redis full: every page is served, nothing is stored, failures are counted and logged once per kind', async (t) => {
  const redis = await ownRedisForTest(t, ['--maxmemory', '2mb', '--maxmemory-policy', 'noeviction'])
  const admin = new Redis(redis.url)
  t.teardown(() => admin.disconnect())
  const { app, lines } = await stressApp(t, redis.url, { errorLogIntervalMs: 60_000 })
  t.equal((await app.inject('/item/stored-before')).headers['x-cache'], 'MISS')
  await new Promise((resolve) => setTimeout(resolve, 50))
  let refused: Error | undefined
  for (let i = 0; i < 10_000 && refused === undefined; i++) {
    await admin.set(`filler:${i}`, Buffer.alloc(16 * 1024, 1)).catch((err: Error) => { refused = err })
  }
  t.match(refused?.message, /OOM/, 'Redis refuses writes')
  // Well under what it holds: freed client buffers cannot bring it back under the limit for a few small writes.
  await admin.config('SET', 'maxmemory', '1mb')

  const responses = []
  for (let batch = 0; batch < 10; batch++) {
    responses.push(...await Promise.all(Array.from({ length: 20 }, async (_unused, i) => await app.inject(`/item/full-${batch}-${i}`))))
    responses.push(await app.inject('/item/hot'), await app.inject(`/q?batch=${batch}`))
  }
  await new Promise((resolve) => setTimeout(resolve, 200)) // writes are not awaited by the requests
  t.equal(responses.length, 220)
  t.ok(responses.every((response) => response.statusCode === 200), 'all 200')
  t.ok(responses.every(rightBody), 'each with the body its own handler renders')
  t.ok(responses.every((response) => response.headers['x-cache'] === 'MISS'), 'all MISS: nothing could be stored')

  const stats = app.cache.stats()
  t.ok(stats.errors > 0, `write failures counted (${stats.errors})`)
  const keys = await census(admin, 'stress-test:', 250)
  t.equal(keys.keys, 1, 'no key under the prefix but the page stored before, and no fleet lock left')
  // Refused writes are answers, not silence: the breaker stays closed and pages stored before are still served.
  t.equal(stats.breaker, 'closed')
  const before = await app.inject('/item/stored-before')
  t.equal(before.headers['x-cache'], 'HIT', 'a page stored before Redis filled up is still a hit')
  t.ok(rightBody(before))

  const failures = pluginLines(lines).filter((line) => line.cacheFailure !== undefined)
  const kinds = new Set(failures.map((line) => line.cacheFailure))
  t.ok(failures.length >= 1, 'the failures are logged')
  t.equal(failures.length, kinds.size, `one line per kind of failure in the interval (${[...kinds].join(', ')})`)
  t.ok(failures.every((line) => /OOM/.test(JSON.stringify(line.err))), 'each line carries the OOM error')
})
