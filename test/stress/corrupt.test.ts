// Short form of stress scenario 7: corrupt or foreign data under the prefix. The README: "a miss, logged, and
// overwritten by the next store", never a crash, never garbage served.
import t from 'tap'
import { setImmediate as yieldToEventLoop } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { decodePage } from '../../plugin/index.js'
import { itemBody } from '../../stress/lib/app-routes.js'
import { CORRUPTIONS, CORRUPTION_NOTES, corrupt, type Corruption } from '../../stress/lib/corrupt.js'
import { ownRedisForTest, pluginLines, rightBody, stressApp } from './fixtures/helpers.js'

const PREFIX = 'stress-test:'
const storeKey = (id: string): string => `${PREFIX}view//item/${id}`

t.test('each kind of corruption, alone: a miss with the right page, counted, logged, overwritten', async (t) => {
  const redis = await ownRedisForTest(t)
  const admin = new Redis(redis.url)
  t.teardown(() => admin.disconnect())
  // Every failure logged, so that each kind can be seen to be.
  const { app, lines } = await stressApp(t, redis.url, { errorLogIntervalMs: 1 })
  for (const kind of CORRUPTIONS) {
    const id = `probe-${kind}`
    t.equal((await app.inject(`/item/${id}`)).headers['x-cache'], 'MISS')
    await new Promise((resolve) => setTimeout(resolve, 50))
    t.equal((await app.inject(`/item/${id}`)).headers['x-cache'], 'HIT', `${kind}: cached first`)
    const errors = app.cache.stats().errors
    const logged = pluginLines(lines).length
    const corruptedAt = Date.now()
    await corrupt(admin, storeKey(id), kind, itemBody(id))

    const first = await app.inject(`/item/${id}`)
    t.ok(first.statusCode === 200 && rightBody(first) && first.headers['x-cache'] === 'MISS',
      `${kind} (${CORRUPTION_NOTES[kind]}): a miss with the right page (got ${first.statusCode} ${String(first.headers['x-cache'])})`)
    t.ok(app.cache.stats().errors > errors, `${kind}: counted in stats().errors`)
    t.ok(pluginLines(lines).slice(logged).some((line) => line.cacheFailure === 'decode'), `${kind}: logged`)
    await new Promise((resolve) => setTimeout(resolve, 100)) // the write is not awaited by the request
    let overwritten = false
    try {
      const entry = decodePage(await admin.hgetBuffer(storeKey(id), '') ?? Buffer.alloc(0))
      overwritten = entry.createdAt >= corruptedAt && entry.status === 200 && entry.body.toString() === itemBody(id)
    } catch {}
    t.ok(overwritten, `${kind}: overwritten by the next store`)
    const second = await app.inject(`/item/${id}`)
    t.ok(second.statusCode === 200 && rightBody(second), `${kind}: the next request gets the right page`)
  }
})

t.test('corruption written while requests run: never a crash, never a wrong page (known kinds aside)', async (t) => {
  const redis = await ownRedisForTest(t)
  const admin = new Redis(redis.url)
  t.teardown(() => admin.disconnect())
  const { app } = await stressApp(t, redis.url)
  const ids = CORRUPTIONS.flatMap((kind) => [0, 1].map((i) => ({ kind, id: `load-${kind}-${i}` })))
  for (const { id } of ids) await app.inject(`/item/${id}`)

  const outcomes = new Map<Corruption, { requests: number, fiveXX: number, wrong: number }>(
    CORRUPTIONS.map((kind) => [kind, { requests: 0, fiveXX: 0, wrong: 0 }]))
  const load = { running: true } // an object: the workers await, and the loop below flips it meanwhile
  const workers = Array.from({ length: 10 }, async (_unused, worker) => {
    for (let n = worker; load.running; n += 10) {
      const { kind, id } = ids[n % ids.length] as { kind: Corruption, id: string }
      const response = await app.inject(`/item/${id}`)
      const outcome = outcomes.get(kind) as { requests: number, fiveXX: number, wrong: number }
      outcome.requests++
      if (response.statusCode >= 500) outcome.fiveXX++
      else if (!rightBody(response)) outcome.wrong++
      // With the breaker open, a request through inject completes without touching the event loop; a loop of them
      // would starve the timers and sockets that close it again.
      await yieldToEventLoop()
    }
  })
  for (let round = 0; round < 300; round++) {
    const { kind, id } = ids[round % ids.length] as { kind: Corruption, id: string }
    await corrupt(admin, storeKey(id), kind, itemBody(id))
    await new Promise((resolve) => setTimeout(resolve, 3))
  }
  load.running = false
  await Promise.all(workers)

  t.equal((await app.inject('/item/alive')).statusCode, 200, 'the app still answers')
  for (const [kind, outcome] of outcomes) {
    t.ok(outcome.requests > 0, `${kind}: ${outcome.requests} requests`)
    t.equal(outcome.fiveXX, 0, `${kind}: no 5xx`)
    t.equal(outcome.wrong, 0, `${kind}: no wrong page`)
  }
})
