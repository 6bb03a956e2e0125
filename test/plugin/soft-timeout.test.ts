import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyCache from '../../plugin/index.js'
import { REFRESH_HEADER } from '../../plugin/refresh.js'
import { build, type LogLine } from '../helpers/app.js'
import { fakeClock, latch, type Latch } from '../helpers/clock.js'
import { redisForFile } from '../helpers/redis.js'

// Time is the test's: Date.now is replaced, so a page is made stale by moving the clock, not by waiting. (Redis keeps
// the entries by its own clock, for ttl + grace, far longer than any test.) The soft timeouts are real timers, but each
// one fires while the handler it races is held on a latch the test releases: the order of events is fixed.
const { redis, client } = await redisForFile(t)

/** `next()` resolves when the next background refresh of `app` has sent its response (and so written its page). */
function refreshWatcher (app: FastifyInstance): { next: () => Promise<void> } {
  let done = latch()
  app.addHook('onResponse', async (request) => {
    if (request.headers[REFRESH_HEADER] !== undefined) done.release()
  })
  return {
    next: async () => {
      done = latch()
      return await done.promise
    }
  }
}

/**
 * A route whose handler, while held, says it started and waits for the test to release it. `hold` returns that
 * signal and the release for the handler runs from then on.
 */
function slowRoute (app: FastifyInstance, url: string, cache: Record<string, unknown>): {
  calls: () => number, hold: () => { started: Promise<void>, release: () => void }
} {
  let calls = 0
  let gate: Latch | undefined
  let started = latch()
  app.get(url, { config: { cache: { ttl: 60, grace: 600, ...cache } } }, async () => {
    const n = ++calls
    if (gate !== undefined) {
      started.release()
      await gate.promise
    }
    return `v${n}`
  })
  return {
    calls: () => calls,
    hold: () => {
      const held = latch()
      gate = held
      started = latch()
      return { started: started.promise, release: held.release }
    }
  }
}

t.test('past the soft timeout the stale page is served; the refresh goes on and stores its page', async (t) => {
  const clock = fakeClock(t)
  const app = await build(t, { redis })
  const refreshes = refreshWatcher(app)
  const route = slowRoute(app, '/slow', { softTimeoutMs: 20 })
  t.equal((await app.inject('/slow')).body, 'v1')
  clock.advance(61_000) // past the ttl, within grace
  const held = route.hold()
  const refreshed = refreshes.next()
  const stale = await app.inject('/slow')
  t.equal(stale.headers['x-cache'], 'STALE')
  t.equal(stale.body, 'v1')
  t.match(stale.headers['cache-status'], /fwd=stale/)
  await held.started
  t.equal(route.calls(), 2, 'the handler runs once, in the background refresh')
  held.release()
  await refreshed
  const fresh = await app.inject('/slow')
  t.equal(fresh.headers['x-cache'], 'HIT')
  t.equal(fresh.body, 'v2', 'the refresh stored its page when it ended')
  t.equal(route.calls(), 2)
})

t.test('a refresh that ends within the soft timeout is served fresh, collapsed', async (t) => {
  const clock = fakeClock(t)
  const app = await build(t, { redis })
  const route = slowRoute(app, '/quick', { softTimeoutMs: 60_000 })
  await app.inject('/quick')
  clock.advance(61_000)
  const response = await app.inject('/quick')
  t.equal(response.headers['x-cache'], 'HIT')
  t.equal(response.body, 'v2')
  t.match(response.headers['cache-status'], /collapsed/)
  t.equal(route.calls(), 2)
})

t.test('a burst on a grace page runs the handler once and serves every request stale', async (t) => {
  const clock = fakeClock(t)
  const app = await build(t, { redis })
  const refreshes = refreshWatcher(app)
  const route = slowRoute(app, '/burst', { softTimeoutMs: 20 })
  await app.inject('/burst')
  clock.advance(61_000)
  const held = route.hold()
  const refreshed = refreshes.next()
  const responses = await Promise.all(Array.from({ length: 10 }, async () => await app.inject('/burst')))
  t.same(responses.map((response) => response.headers['x-cache']), Array(10).fill('STALE'))
  t.same(responses.map((response) => response.body), Array(10).fill('v1'))
  held.release()
  await refreshed
  t.equal(route.calls(), 2, 'one handler run for the ten requests')
  t.equal((await app.inject('/burst')).body, 'v2')
})

t.test('a refresh that fails leaves the stale page, which grace serves', async (t) => {
  const clock = fakeClock(t)
  const app = await build(t, { redis })
  let failing: 'no' | 'throw' | 'vanish' = 'no'
  app.get('/fails', { config: { cache: { ttl: 60, grace: 600, softTimeoutMs: 60_000 } } }, async () => {
    if (failing === 'vanish') await client.del(app.cache.prefix + 'view//fails') // the stored page is gone too
    if (failing !== 'no') throw new Error('database down')
    return 'good'
  })
  await app.inject('/fails')
  clock.advance(61_000)
  failing = 'throw'
  const response = await app.inject('/fails')
  t.equal(response.statusCode, 200)
  t.equal(response.headers['x-cache'], 'STALE')
  t.equal(response.body, 'good')
  failing = 'vanish'
  const vanished = await app.inject('/fails')
  t.equal(vanished.headers['x-cache'], 'STALE', 'the page this request found is still served')
  t.equal(vanished.body, 'good')
})

t.test('hard limit: a refresh past lockTimeoutMs is given up, so that another instance may try', async (t) => {
  const clock = fakeClock(t)
  const gaveUp = latch()
  const lines: LogLine[] = []
  const logger = {
    level: 'warn',
    stream: {
      write: (text: string) => {
        const line = JSON.parse(text) as LogLine
        lines.push(line)
        if (line.msg.includes('passed lockTimeoutMs')) gaveUp.release()
      }
    }
  }
  const prefix = `${redis.prefix}hard-limit:`
  const a = await build(t, { redis, logger, cache: { prefix, lockTimeoutMs: 50 } })
  const b = await build(t, { redis, cache: { prefix, lockTimeoutMs: 50 } })
  const onA = slowRoute(a, '/hung', { softTimeoutMs: 10 })
  const onB = slowRoute(b, '/hung', { softTimeoutMs: 10 })
  await a.inject('/hung')
  clock.advance(61_000)
  const hung = onA.hold()
  t.equal((await a.inject('/hung')).headers['x-cache'], 'STALE')
  await hung.started
  await gaveUp.promise
  t.ok(lines.some((line) => line.msg === 'fastify-cache: background refresh failed or passed lockTimeoutMs'))
  const again = await a.inject('/hung')
  t.same([again.headers['x-cache'], again.body], ['STALE', 'v1'], 'still the stale page, within the soft timeout')
  t.equal(onA.calls(), 2, 'this process does not pile a second run on its hung handler')
  const other = onB.hold()
  t.equal((await b.inject('/hung')).headers['x-cache'], 'STALE')
  await other.started
  t.equal(onB.calls(), 1, 'another instance took the page\'s lock and refreshes it')
  hung.release()
  other.release()
})

t.test('a purge while the request waits: it computes the page itself and never serves what was purged', async (t) => {
  const clock = fakeClock(t)
  const app = await build(t, { redis })
  let content = 'old'
  let holding = false
  const gate = latch()
  const started = latch()
  let calls = 0
  app.get('/purged', { config: { cache: { ttl: 60, grace: 600, softTimeoutMs: 60_000 } } }, async () => {
    calls++
    const rendered = content
    if (holding) {
      holding = false
      started.release()
      await gate.promise
    }
    return rendered
  })
  await app.inject('/purged')
  clock.advance(61_000)
  holding = true
  const waiting = app.inject('/purged')
  await started.promise // the refresh's handler runs: the request waits on it
  content = 'new'
  await app.cache.delete('view//purged')
  gate.release()
  const response = await waiting
  t.equal(response.body, 'new', 'not the purged page, nor the refresh that read the old data')
  t.not(response.headers['x-cache'], 'STALE')
  t.equal(calls, 3, 'the refresh, then the request itself')
})

t.test('a forced update under way is waited on up to the soft timeout, then the stale page is served', async (t) => {
  const clock = fakeClock(t)
  const app = await build(t, { redis })
  const route = slowRoute(app, '/forced', {
    softTimeoutMs: 20, forceUpdate: (request: { headers: Record<string, unknown> }) => request.headers['x-force'] === '1'
  })
  await app.inject('/forced')
  clock.advance(61_000)
  const held = route.hold()
  const forced = app.inject({ url: '/forced', headers: { 'x-force': '1' } })
  await held.started // the forced update computes the page
  const stale = await app.inject('/forced')
  t.equal(stale.headers['x-cache'], 'STALE')
  t.equal(stale.body, 'v1')
  held.release()
  t.equal((await forced).body, 'v2')
  t.equal(route.calls(), 2, 'no refresh of its own: the forced update was computing the page')
})

t.test('softTimeoutMs is validated: a positive number, and only with grace', async (t) => {
  for (const [cache, detail] of [
    [{ softTimeoutMs: 0, grace: 60 }, /positive number/],
    [{ softTimeoutMs: -5, grace: 60 }, /positive number/],
    [{ softTimeoutMs: Infinity, grace: 60 }, /positive number/],
    [{ softTimeoutMs: '50', grace: 60 }, /positive number/],
    [{ softTimeoutMs: 50 }, /needs grace/],
    [{ softTimeoutMs: 50, staleWhileRevalidate: 60 }, /needs grace/]
  ] as const) {
    const app = Fastify()
    t.teardown(async () => await app.close())
    await app.register(fastifyCache, { store: 'memory' })
    t.throws(() => app.get('/x', { config: { cache: cache as never } }, async () => 'x'),
      { code: 'FST_CACHE_INVALID_OPTION', option: 'config.cache (GET /x).softTimeoutMs', message: detail })
  }
})
