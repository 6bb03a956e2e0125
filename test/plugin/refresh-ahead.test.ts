import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import fastifyCache from '../../plugin/index.js'
import type { CacheEngine } from '../../plugin/engine.js'
import { decodePage, encodePage, type PageEntry } from '../../plugin/entry.js'
import { normalizeRouteOptions } from '../../plugin/options.js'
import { RefreshAhead, xfetch } from '../../plugin/refresh-ahead.js'
import { REFRESH_HEADER } from '../../plugin/refresh.js'
import { build } from '../helpers/app.js'
import { fakeClock, latch, type Latch } from '../helpers/clock.js'
import { redisForFile } from '../helpers/redis.js'

// Time and chance are the test's: Date.now and Math.random are replaced, so that "close to expiry" is a clock the test
// moves and XFetch's draw is fixed. With random() = 1/e, -ln(random()) is 1: a page is refreshed early exactly when
// now + delta * beta >= its expiry.
const { redis } = await redisForFile(t)
const ONE_OVER_E = Math.exp(-1)

function fakeTime (t: Test): { advance: (ms: number) => void } {
  t.capture(Math, 'random', () => ONE_OVER_E)
  return fakeClock(t)
}

/**
 * A route whose handler takes `computeMs` of the test's clock (refresh-ahead's delta) and, while held, says it started
 * and waits for the test.
 */
function hotRoute (app: FastifyInstance, clock: { advance: (ms: number) => void }, cache: Record<string, unknown>): {
  calls: () => number, hold: () => { started: Promise<void>, release: () => void }
} {
  let calls = 0
  let gate: Latch | undefined
  let started = latch()
  app.get('/hot', { config: { cache: { ttl: 60, ...cache } } }, async () => {
    const n = ++calls
    if (gate !== undefined) {
      started.release()
      await gate.promise
    }
    clock.advance(10_000)
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

t.test('xfetch: early when now - delta * beta * ln(random) reaches the expiry', async (t) => {
  const entry = { createdAt: 0, ttlMs: 60_000, computeMs: 10_000 }
  t.equal(xfetch(entry, 1, 49_999, ONE_OVER_E), false, 'more than delta before expiry')
  t.equal(xfetch(entry, 1, 50_000, ONE_OVER_E), true, 'delta before expiry')
  t.equal(xfetch(entry, 2, 40_000, ONE_OVER_E), true, 'beta 2 doubles how early')
  t.equal(xfetch(entry, 1, 1_000, 0), true, 'a draw of 0 always refreshes')
  t.equal(xfetch(entry, 1, 59_000, 0.999_999), false, 'a draw near 1 almost never does')
  t.equal(xfetch({ createdAt: 0, ttlMs: 60_000 }, 1, 59_999, 0), false, 'an entry without its delta is never refreshed early')
  t.equal(xfetch({ createdAt: 0, ttlMs: 60_000, computeMs: 0 }, 5, 59_999, 1e-300), false, 'nor one computed in no time')
})

t.test('RefreshAhead draws from the clock and the random source it is given', async (t) => {
  const ran: string[] = []
  const engine = {
    flights: { has: () => false },
    refreshes: { run: (id: string) => { ran.push(id); return { promise: Promise.resolve(), shared: false } } }
  } as unknown as CacheEngine
  let now = 0
  const ahead = new RefreshAhead(engine, 1, { now: () => now, random: () => ONE_OVER_E })
  const entry = { createdAt: 0, ttlMs: 60_000, computeMs: 10_000 } as PageEntry
  const key = { storeKey: 'p:view//', variant: '', storable: true }
  const request = {} as FastifyRequest
  now = 49_999
  ahead.onHit(request, key as never, entry)
  t.same(ran, [], 'not yet')
  now = 50_000
  ahead.onHit(request, key as never, entry)
  t.same(ran, ['p:view//\n'], 'one refresh of that page')
})

t.test('a hit near expiry is served at once and refreshes the page once, however many hits there are', async (t) => {
  const clock = fakeTime(t)
  const app = await build(t, { redis })
  const refreshes = refreshWatcher(app)
  const route = hotRoute(app, clock, { refreshAhead: true })
  t.equal((await app.inject('/hot')).body, 'v1') // stored 10 s (delta) after it began: expires 70 s from the start
  clock.advance(25_000) // 35 s before expiry: now + delta is far from it
  t.equal((await app.inject('/hot')).headers['x-cache'], 'HIT')
  t.equal(route.calls(), 1, 'no refresh far from expiry')
  clock.advance(30_000) // 5 s before expiry, closer than delta
  const held = route.hold()
  const refreshed = refreshes.next()
  const burst = await Promise.all(Array.from({ length: 20 }, async () => await app.inject('/hot')))
  t.same(burst.map((response) => response.headers['x-cache']), Array(20).fill('HIT'), 'every hit served at once')
  t.same(burst.map((response) => response.body), Array(20).fill('v1'))
  await held.started
  held.release()
  await refreshed
  t.equal(route.calls(), 2, 'exactly one handler run for the burst')
  const after = await app.inject('/hot')
  t.same([after.headers['x-cache'], after.body], ['HIT', 'v2'], 'the refreshed page, before the old one expired')
  t.equal(route.calls(), 2, 'the new page is far from its expiry')
})

t.test('without refreshAhead the same hits wait for expiry, then miss', async (t) => {
  const clock = fakeTime(t)
  const app = await build(t, { redis })
  const route = hotRoute(app, clock, {})
  await app.inject('/hot')
  clock.advance(55_000)
  t.equal((await app.inject('/hot')).headers['x-cache'], 'HIT')
  t.equal(route.calls(), 1, 'not refreshed early')
  clock.advance(10_000)
  t.equal((await app.inject('/hot')).headers['x-cache'], 'MISS')
  t.equal(route.calls(), 2)
})

t.test('refreshAhead: { beta } refreshes earlier than beta 1', async (t) => {
  const clock = fakeTime(t)
  const app = await build(t, { redis })
  const refreshes = refreshWatcher(app)
  const route = hotRoute(app, clock, { refreshAhead: { beta: 4 } })
  await app.inject('/hot')
  clock.advance(25_000) // 35 s before expiry: within 4 × delta
  const refreshed = refreshes.next()
  t.equal((await app.inject('/hot')).body, 'v1')
  await refreshed
  t.equal(route.calls(), 2)
})

t.test('across instances the page is refreshed once: the fleet lock keeps the others out', async (t) => {
  const clock = fakeTime(t)
  const prefix = `${redis.prefix}fleet-ahead:`
  const a = await build(t, { redis, cache: { prefix } })
  const b = await build(t, { redis, cache: { prefix } })
  const refreshes = refreshWatcher(a)
  const onA = hotRoute(a, clock, { refreshAhead: true })
  const onB = hotRoute(b, clock, { refreshAhead: true })
  await a.inject('/hot')
  t.equal((await b.inject('/hot')).headers['x-cache'], 'HIT')
  clock.advance(55_000)
  const held = onA.hold()
  const refreshed = refreshes.next()
  t.equal((await a.inject('/hot')).headers['x-cache'], 'HIT')
  await held.started // a's refresh holds the page's lock while its handler runs
  const fromB = await Promise.all(Array.from({ length: 5 }, async () => await b.inject('/hot')))
  t.same(fromB.map((response) => response.body), Array(5).fill('v1'))
  held.release()
  await refreshed
  t.equal(onA.calls(), 2)
  t.equal(onB.calls(), 0, 'b left the refresh to the holder of the lock')
  t.equal((await b.inject('/hot')).body, 'v2', 'b is served the page a refreshed')
})

t.test('entries keep how long they took to compute; entries without it still decode', async (t) => {
  const base = { status: 200, headers: {}, body: Buffer.from('x'), createdAt: 1_000, ttlMs: 60_000, etag: '"e"', staleMs: 0, tags: [] }
  t.equal(decodePage(encodePage({ ...base, computeMs: 250 })).computeMs, 250)
  t.equal(decodePage(encodePage(base)).computeMs, undefined, 'stored before it was kept')
  t.throws(() => decodePage(encodePage({ ...base, computeMs: -1 })), { code: 'FST_CACHE_CORRUPT_ENTRY' })
})

t.test('refreshAhead is validated: true, or { beta } with a positive beta', async (t) => {
  const plugin = { defaultTtl: 300 }
  t.equal(normalizeRouteOptions({ refreshAhead: true }, plugin, 'GET /').refreshAheadBeta, 1)
  t.equal(normalizeRouteOptions({ refreshAhead: {} }, plugin, 'GET /').refreshAheadBeta, 1)
  t.equal(normalizeRouteOptions({ refreshAhead: { beta: 2.5 } }, plugin, 'GET /').refreshAheadBeta, 2.5)
  t.equal(normalizeRouteOptions({ refreshAhead: false }, plugin, 'GET /').refreshAheadBeta, undefined)
  t.equal(normalizeRouteOptions(true, plugin, 'GET /').refreshAheadBeta, undefined)
  for (const [refreshAhead, option] of [
    ['yes', 'refreshAhead'], [[], 'refreshAhead'], [null, 'refreshAhead'], [{ beta: 0 }, 'refreshAhead.beta'],
    [{ beta: -1 }, 'refreshAhead.beta'], [{ beta: 'big' }, 'refreshAhead.beta'], [{ beta: Infinity }, 'refreshAhead.beta'],
    [{ speed: 2 }, 'refreshAhead.speed']
  ] as const) {
    const app = Fastify()
    t.teardown(async () => await app.close())
    await app.register(fastifyCache, { store: 'memory' })
    t.throws(() => app.get('/x', { config: { cache: { refreshAhead: refreshAhead as never } } }, async () => 'x'),
      { code: 'FST_CACHE_INVALID_OPTION', option: `config.cache (GET /x).${option}` })
  }
})
