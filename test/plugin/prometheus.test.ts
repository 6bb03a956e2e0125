import Fastify, { type FastifyInstance } from 'fastify'
import fastifyRedis from '@fastify/redis'
import fp from 'fastify-plugin'
import { Registry, register as globalRegistry, type MetricValue } from 'prom-client'
import t from 'tap'
import fastifyCache from '../../plugin/index.js'
import fastifyCachePrometheus, { BREAKER_STATES, METRIC_NAMES, type PrometheusOptions } from '../../plugin/prometheus.js'
import { OTHER_ROUTE, RouteLabels } from '../../plugin/route-labels.js'
import { build } from '../helpers/app.js'
import { redisForFile, redisForTest, sleep } from '../helpers/redis.js'

const { redis, client } = await redisForFile(t)

type Labels = Record<string, string | number>
/** A sample; histograms name each (`_bucket`, `_sum`, `_count`). */
type Sample = MetricValue<string> & { metricName?: string }

/** The samples of one metric, read through prom-client's registry API (no parsing of the text format). */
async function samples (registry: Registry, name: string): Promise<Sample[]> {
  const metric = registry.getSingleMetric(name)
  if (metric === undefined) throw new Error(`${name} is not registered`)
  return (await metric.get()).values
}

/** One sample's value, 0 when there is no sample with exactly these labels (and, for histograms, this name). */
async function valueOf (registry: Registry, name: string, labels: Labels, sampleName = name): Promise<number> {
  const found = (await samples(registry, name)).filter((sample) => (sample.metricName ?? name) === sampleName &&
    JSON.stringify(Object.entries(sample.labels).sort()) === JSON.stringify(Object.entries(labels).sort()))
  return found.reduce((sum, sample) => sum + sample.value, 0)
}

/** A fresh registry with the metrics plugin on `app` (registered after fastify-cache). */
async function withMetrics (app: FastifyInstance, options: PrometheusOptions = {}): Promise<Registry> {
  const registry = new Registry()
  await app.register(fastifyCachePrometheus, { registry, ...options })
  return registry
}

t.test('fastify_cache_responses_total counts every response of a cached route by route pattern and x-cache', async (t) => {
  const app = await build(t, { redis, cache: { l1: true } })
  const registry = await withMetrics(app)
  let fail = false
  app.get('/post/:id', { config: { cache: { ttl: 60, unless: (request) => request.headers['x-user'] !== undefined } } },
    async (request, reply) => {
      const { id } = request.params as { id: string }
      // An unknown post is the app's 404 page: the response leaves the route, not the route's metrics.
      if (id === 'missing') return await reply.callNotFound()
      return `post ${id}`
    })
  app.get('/flaky', { config: { cache: { ttl: 0.001, grace: 60 } } }, async (_request, reply) => {
    if (fail) return await reply.code(503).send('down')
    return 'flaky'
  })
  app.get('/plain', async () => 'not cached')
  await app.ready()

  const tally = new Map<string, number>()
  const send = async (url: string, route: string, headers: Record<string, string> = {}): Promise<void> => {
    const response = await app.inject({ url, headers })
    const result = String(response.headers['x-cache']).toLowerCase()
    tally.set(`${route} ${result}`, (tally.get(`${route} ${result}`) ?? 0) + 1)
  }
  for (const id of [1, 2, 1, 2, 1]) await send(`/post/${id}`, '/post/:id')
  await send('/post/1', '/post/:id', { 'x-user': 'alice' })
  await send('/post/missing', '/post/:id')
  await send('/flaky', '/flaky')
  await sleep(5) // past the 1 ms ttl, within grace
  fail = true
  await send('/flaky', '/flaky')
  await app.inject('/plain')

  const counted = new Map<string, number>()
  for (const sample of await samples(registry, METRIC_NAMES.responses)) {
    t.same(Object.keys(sample.labels).sort(), ['result', 'route'], 'labelled by route and result only')
    counted.set(`${sample.labels.route} ${sample.labels.result}`, sample.value)
  }
  t.same(Object.fromEntries(counted), Object.fromEntries(tally), 'the counter equals the x-cache tallies, per route pattern')
  t.same([...new Set([...tally.keys()].map((key) => key.split(' ')[1]))].sort(), ['bypass', 'hit', 'miss', 'stale'],
    'every result was seen')
  const routes = (await samples(registry, METRIC_NAMES.responses)).map((sample) => sample.labels.route)
  t.notOk(routes.some((route) => String(route).includes('/post/1') || route === '/plain'), 'never a raw URL, never an uncached route')
  const stats = app.cache.stats()
  t.equal(await valueOf(registry, METRIC_NAMES.l1Hits, { route: '/post/:id' }), stats.l1Hits, 'L1 hits, as stats() counts them')
  t.ok(stats.l1Hits > 0, 'some hits came from L1')
})

t.test('coalesced hits, and the lookup and compute histograms by route', async (t) => {
  const app = await build(t, { redis })
  const registry = await withMetrics(app)
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  let runs = 0
  app.get('/slow', { config: { cache: { ttl: 60 } } }, async () => {
    runs++
    await gate
    return 'slow'
  })
  app.get('/fast', { config: { cache: { ttl: 60 } } }, async () => 'fast')
  await app.ready()
  const pending = Array.from({ length: 5 }, async () => await app.inject('/slow'))
  await sleep(200) // the others wait on the first one's computation (on a loaded machine, maybe not all of them yet)
  release()
  const responses = await Promise.all(pending)
  const collapsed = responses.filter((response) => String(response.headers['cache-status']).includes('collapsed')).length
  t.ok(collapsed >= 1, 'requests collapsed onto one computation')
  t.equal(await valueOf(registry, METRIC_NAMES.coalesced, { route: '/slow' }), collapsed, 'coalesced, by route')
  await app.inject('/fast')
  await app.inject('/fast')

  // Lookups past L1: every request here; computations: one per miss.
  t.equal(await valueOf(registry, METRIC_NAMES.lookup, { route: '/slow' }, `${METRIC_NAMES.lookup}_count`), 5)
  t.equal(await valueOf(registry, METRIC_NAMES.lookup, { route: '/fast' }, `${METRIC_NAMES.lookup}_count`), 2)
  t.equal(await valueOf(registry, METRIC_NAMES.compute, { route: '/slow' }, `${METRIC_NAMES.compute}_count`), runs, 'one per handler run')
  t.equal(await valueOf(registry, METRIC_NAMES.compute, { route: '/fast' }, `${METRIC_NAMES.compute}_count`), 1)
  const infinite = await valueOf(registry, METRIC_NAMES.lookup, { route: '/fast', le: '+Inf' }, `${METRIC_NAMES.lookup}_bucket`)
  t.equal(infinite, 2, 'the +Inf bucket holds every observation')
  const labelSets = new Set((await samples(registry, METRIC_NAMES.compute)).map((sample) => Object.keys(sample.labels).sort().join(',')))
  t.same([...labelSets].sort(), ['le,route', 'route'], 'buckets by le and route; sum and count by route')
})

t.test('store errors and the breaker state gauge', async (t) => {
  const own = await redisForTest(t, [], { own: true })
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(fastifyCache, {
    redis: own.url, prefix: own.prefix, lookupTimeoutMs: 100, breaker: { threshold: 2, cooldownMs: 200 }
  })
  const registry = await withMetrics(app)
  app.get('/page', { config: { cache: true } }, async () => 'page')
  await app.ready()
  t.equal(await valueOf(registry, METRIC_NAMES.breaker, {}), BREAKER_STATES.closed)
  t.equal(await valueOf(registry, METRIC_NAMES.busConnected, {}), 0, 'no bus: 0')
  await own.kill()
  const seen = new Set<number>()
  for (let i = 0; i < 4; i++) {
    t.equal((await app.inject('/page')).body, 'page', 'the page is served all the same')
    const gauge = await valueOf(registry, METRIC_NAMES.breaker, {})
    t.equal(gauge, BREAKER_STATES[app.cache.stats().breaker], 'the gauge is the breaker\'s state')
    seen.add(gauge)
  }
  t.ok(seen.has(BREAKER_STATES.open), 'open once the store kept failing')
  await sleep(250) // the cooldown ends: the next call may probe
  t.equal(await valueOf(registry, METRIC_NAMES.breaker, {}), BREAKER_STATES['half-open'])
  const errors = app.cache.stats().errors
  t.ok(errors > 0)
  t.equal(await valueOf(registry, METRIC_NAMES.errors, {}), errors, 'every error stats() counted')
})

t.test('bus delivery delay, from another instance; a message without a timestamp is applied, not timed', async (t) => {
  const prefix = `${redis.prefix}bus:`
  const a = await build(t, { redis, cache: { prefix, l1: true, bus: true } })
  const b = await build(t, { redis, cache: { prefix, l1: true, bus: true } })
  const registry = await withMetrics(b)
  await b.ready()
  t.equal(await valueOf(registry, METRIC_NAMES.busConnected, {}), 1)
  await a.cache.delete('view//x')
  await client.publish(`${prefix}__bus`, JSON.stringify({ from: 'an older version', keys: [`${prefix}view//y`] }))
  for (let i = 0; i < 200 && (b.cache.stats().bus?.received ?? 0) < 2; i++) await sleep(10)
  t.equal(b.cache.stats().bus?.received, 2, 'both messages arrived')
  t.equal(await valueOf(registry, METRIC_NAMES.busDelay, {}, `${METRIC_NAMES.busDelay}_count`), 1, 'only the timestamped one is timed')
})

t.test('route labels are bounded: past maxRoutes, new routes count as other', async (t) => {
  const app = await build(t)
  const registry = await withMetrics(app, { maxRoutes: 2 })
  for (const path of ['/a', '/b', '/c', '/d']) app.get(path, { config: { cache: true } }, async () => path)
  await app.ready()
  for (const path of ['/a', '/b', '/c', '/d', '/a']) await app.inject(path)
  const routes = new Set((await samples(registry, METRIC_NAMES.responses)).map((sample) => sample.labels.route))
  t.same([...routes].sort(), ['/a', '/b', OTHER_ROUTE])
  t.equal(await valueOf(registry, METRIC_NAMES.responses, { route: OTHER_ROUTE, result: 'miss' }), 2)
  t.equal(await valueOf(registry, METRIC_NAMES.responses, { route: '/a', result: 'hit' }), 1, 'a route seen before the bound keeps its label')

  const labels = new RouteLabels(1)
  t.same(['/x', '/y', '/x'].map((route) => labels.of(route)), ['/x', OTHER_ROUTE, '/x'])
})

t.test('the default registry; close takes the metrics out, so the app can be built again', async (t) => {
  for (let round = 0; round < 2; round++) {
    const app = Fastify()
    await app.register(fastifyCache, { store: 'memory' })
    await app.register(fastifyCachePrometheus)
    app.get('/', { config: { cache: true } }, async () => 'home')
    await app.inject('/')
    t.equal(await valueOf(globalRegistry, METRIC_NAMES.responses, { route: '/', result: 'miss' }), 1, `round ${round}`)
    await app.close()
    t.equal(globalRegistry.getSingleMetric(METRIC_NAMES.responses), undefined, 'gone after close')
  }
})

t.test('metrics keep counting when the store moves to @fastify/redis at ready', async (t) => {
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(fp(async (instance) => { await instance.register(fastifyCache, { prefix: `${redis.prefix}moved:` }) }))
  await app.register(fp(async (instance) => { await instance.register(fastifyRedis, { url: redis.url }) }))
  const registry = await withMetrics(app)
  app.get('/page', { config: { cache: true } }, async () => 'page')
  await app.ready()
  t.equal(app.cache.storeKind, 'redis')
  await app.inject('/page')
  await app.inject('/page')
  t.equal(await valueOf(registry, METRIC_NAMES.responses, { route: '/page', result: 'miss' }), 1)
  t.equal(await valueOf(registry, METRIC_NAMES.responses, { route: '/page', result: 'hit' }), 1)
})

t.test('options are checked at registration, with a code naming the option', async (t) => {
  const taken = new Registry()
  const bad: Array<[PrometheusOptions, string]> = [
    [{ registry: {} as Registry }, 'registry'],
    [{ registry: taken }, 'registry'],
    [{ maxRoutes: 0 }, 'maxRoutes'],
    [{ maxRoutes: 1.5 }, 'maxRoutes'],
    [{ lookupBuckets: [] }, 'lookupBuckets'],
    [{ lookupBuckets: [0.1, 0.05] }, 'lookupBuckets'],
    [{ computeBuckets: [-1] }, 'computeBuckets'],
    [{ computeBuckets: 'fast' as unknown as number[] }, 'computeBuckets'],
    [{ registy: new Registry() } as unknown as PrometheusOptions, 'registy']
  ]
  const first = Fastify()
  t.teardown(async () => await first.close())
  await first.register(fastifyCache, { store: 'memory' })
  await first.register(fastifyCachePrometheus, { registry: taken })
  for (const [options, option] of bad) {
    const app = Fastify()
    await app.register(fastifyCache, { store: 'memory' })
    await t.rejects(async () => await app.register(fastifyCachePrometheus, options),
      { code: 'FST_CACHE_INVALID_OPTION', option }, `${option}: ${Object.keys(options).map((key) => key + ' ' + String((options as Record<string, unknown>)[key])).join()}`)
    await app.close()
  }
  const custom = Fastify()
  t.teardown(async () => await custom.close())
  await custom.register(fastifyCache, { store: 'memory' })
  const registry = await withMetrics(custom, { lookupBuckets: [0.5, 1], computeBuckets: [2] })
  custom.get('/', { config: { cache: true } }, async () => 'home')
  await custom.inject('/')
  const les = (await samples(registry, METRIC_NAMES.compute)).filter((sample) => sample.metricName?.endsWith('_bucket'))
    .map((sample) => sample.labels.le)
  t.same(les, [2, '+Inf'], 'the buckets given')
})

t.test('needs fastify-cache registered first', async (t) => {
  const app = Fastify()
  t.teardown(async () => await app.close())
  await t.rejects(async () => await app.register(fastifyCachePrometheus, { registry: new Registry() }), /fastify-cache/)
})

t.test('an observer that throws does not fail the request; stopping twice is harmless', async (t) => {
  const app = await build(t)
  app.get('/', { config: { cache: true } }, async () => 'home')
  const heard: string[] = []
  const stopThrowing = app.cache.observe({ response () { throw new Error('a metrics bug') } })
  const stop = app.cache.observe({ response ({ label }) { heard.push(label) } })
  const response = await app.inject('/')
  t.equal(response.statusCode, 200)
  t.equal(response.body, 'home')
  t.same(heard, ['MISS'], 'the next observer still hears')
  stopThrowing()
  stop()
  stop()
  await app.inject('/')
  t.same(heard, ['MISS'], 'a stopped observer hears nothing')
})
