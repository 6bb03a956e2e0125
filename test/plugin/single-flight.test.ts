import t from 'tap'
import { build } from '../helpers/app.js'
import { redisForFile, sleep } from '../helpers/redis.js'

const { redis } = await redisForFile(t)

t.test('100 concurrent cold requests run the handler once and all get the same response', async (t) => {
  const app = await build(t, { redis })
  let calls = 0
  app.get('/cold', { config: { cache: true } }, async (_request, reply) => {
    calls++
    await sleep(100)
    return reply.type('text/html').send('<h1>computed once</h1>')
  })
  await app.ready()
  const responses = await Promise.all(Array.from({ length: 100 }, async () => await app.inject('/cold')))
  t.equal(calls, 1, 'one handler run')
  t.ok(responses.every((response) => response.statusCode === 200 && response.body === '<h1>computed once</h1>'))
  t.ok(responses.every((response) => response.headers['content-type'] === 'text/html'))
  const labels = responses.map((response) => response.headers['x-cache'])
  t.equal(labels.filter((label) => label === 'MISS').length, 1, 'one MISS')
  t.equal(labels.filter((label) => label === 'HIT').length, 99, 'the rest are served the shared result')
  t.equal(app.cache.stats().coalesced, 99)
})

t.test('when the handler throws, waiters compute for themselves and nothing hangs', async (t) => {
  const app = await build(t, { redis })
  let calls = 0
  app.get('/flaky', { config: { cache: true } }, async () => {
    calls++
    await sleep(50)
    if (calls === 1) throw new Error('first call fails')
    return 'recovered'
  })
  await app.ready()
  const responses = await Promise.all(Array.from({ length: 20 }, async () => await app.inject('/flaky')))
  const statuses = responses.map((response) => response.statusCode)
  t.equal(statuses.filter((status) => status === 500).length, 1, 'only the failing call failed')
  t.equal(statuses.filter((status) => status === 200).length, 19)
  t.ok(responses.filter((response) => response.statusCode === 200).every((response) => response.body === 'recovered'))
  t.ok(calls < 20, `the recovery was shared too (${calls} handler runs)`)
  t.equal((await app.inject('/flaky')).headers['x-cache'], 'HIT')
})

t.test('an uncacheable response is not shared with waiters', async (t) => {
  const app = await build(t, { redis })
  let calls = 0
  app.get('/personal', { config: { cache: true } }, async (_request, reply) => {
    const n = ++calls
    await sleep(30)
    return reply.header('set-cookie', `sid=${n}`).send(`for ${n}`)
  })
  await app.ready()
  const responses = await Promise.all(Array.from({ length: 5 }, async () => await app.inject('/personal')))
  t.equal(calls, 5, 'each request computed its own response')
  t.equal(new Set(responses.map((response) => response.headers['set-cookie'])).size, 5, 'no cookie was handed to another request')
})

t.test('a leader that never replies releases its waiters after lockTimeoutMs', async (t) => {
  const app = await build(t, { redis, cache: { lockTimeoutMs: 100 } })
  let calls = 0
  app.get('/hijack', { config: { cache: true } }, async (_request, reply) => {
    calls++
    if (calls === 1) {
      reply.hijack()
      reply.raw.end('hijacked')
      return reply
    }
    return 'normal'
  })
  await app.ready()
  const [first, second] = await Promise.all([app.inject('/hijack'), (async () => { await sleep(10); return await app.inject('/hijack') })()])
  t.equal(first.body, 'hijacked')
  t.equal(second.body, 'normal', 'the waiter gave up waiting and computed')
})
