// Short form of stress scenario 3: Redis slow, behind a proxy that holds every chunk. Correctness only; the latency
// bound is measured by `npm run test:stress`.
import t from 'tap'
import { Redis } from 'ioredis'
import { DelayProxy } from '../../stress/lib/proxy.js'
import { ownRedisForTest, rightBody, sleep, stressApp } from './fixtures/helpers.js'

t.test('Redis slow: pages are computed (MISS) with the right body, and hits resume when it is fast again', async (t) => {
  const redis = await ownRedisForTest(t)
  const proxy = new DelayProxy(redis.port)
  const port = await proxy.listen()
  t.teardown(async () => await proxy.close())
  const url = `redis://127.0.0.1:${port}`
  const { app } = await stressApp(t, url, { lookupTimeoutMs: 50, breaker: { threshold: 3, cooldownMs: 300 } })
  t.equal((await app.inject('/item/a')).headers['x-cache'], 'MISS')
  t.equal((await app.inject('/item/a')).headers['x-cache'], 'HIT', 'through the proxy, the page is cached')

  const bystander = new Redis(url)
  t.teardown(() => bystander.disconnect())
  await bystander.ping()
  proxy.delayMs = 400
  // A round trip through the proxy now takes 800 ms: responses that arrive before it did not wait for Redis.
  let roundTripDone = false
  const marker = bystander.ping().then(() => { roundTripDone = true })
  const responses = []
  for (let i = 0; i < 4; i++) {
    responses.push(await app.inject('/item/a'))
    responses.push(await app.inject(`/q?i=${i}`))
  }
  responses.push(...await Promise.all(Array.from({ length: 10 }, async (_unused, i) => await app.inject(`/lang?n=${i}`))))
  t.equal(roundTripDone, false, 'every response arrived before one Redis round trip could')
  t.ok(responses.every((response) => response.statusCode === 200), 'all answered 200')
  t.ok(responses.every(rightBody), 'each with the body its own handler renders')
  t.ok(responses.every((response) => response.headers['x-cache'] !== 'HIT'), 'none served from the slow store')
  t.ok(app.cache.stats().errors >= 1, 'the timeouts are counted')

  await marker
  proxy.delayMs = 0
  let label: unknown
  for (let attempt = 0; attempt < 100 && label !== 'HIT'; attempt++) {
    await sleep(50)
    label = (await app.inject('/item/a')).headers['x-cache']
  }
  t.equal(label, 'HIT', 'hits resume once Redis is fast again')
})
