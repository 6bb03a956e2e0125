import t from 'tap'
import { METRIC_NAMES } from '../../plugin/prometheus.js'
import { redisForTest, sleep } from '../helpers/redis.js'
import { admin, buildBlog, Visitor } from './fixtures/blog.js'

const redis = await redisForTest(t)

t.test('/healthz on Redis: 200 with redis, bus and breaker; never cached', async (t) => {
  const app = await buildBlog(t, redis)
  for (let i = 0; i < 2; i++) {
    const response = await app.inject('/healthz')
    t.equal(response.statusCode, 200)
    t.match(response.headers['content-type'], /^application\/json/)
    t.same(response.json(), { redis: 'up', bus: 'up', breaker: 'closed' })
    t.equal(response.headers['x-cache'], undefined, 'not a cached route')
    t.equal(response.headers['cache-control'], 'no-store')
  }
})

t.test('/healthz without Redis (the memory store): 503, redis down, no bus', async (t) => {
  const app = await buildBlog(t, undefined)
  const response = await app.inject('/healthz')
  t.equal(response.statusCode, 503)
  t.same(response.json(), { redis: 'down', bus: 'off', breaker: 'closed' })
})

t.test('/healthz once Redis dies: 503, redis and bus down', async (t) => {
  const own = await redisForTest(t, [], { own: true })
  const app = await buildBlog(t, own)
  t.equal((await app.inject('/healthz')).statusCode, 200)
  await own.kill()
  for (let i = 0; i < 100 && app.cache.stats().bus?.connected !== false; i++) await sleep(10)
  const response = await app.inject('/healthz')
  t.equal(response.statusCode, 503)
  t.same(response.json(), { redis: 'down', bus: 'down', breaker: 'closed' })
  t.equal((await app.inject('/about')).statusCode, 200, 'the pages are served all the same')
  // Back up, so that the app closes its client normally (QUIT) as well.
  await own.restart()
  let back = await app.inject('/healthz')
  for (let i = 0; i < 100 && back.statusCode !== 200; i++) {
    await sleep(50)
    back = await app.inject('/healthz')
  }
  t.equal(back.statusCode, 200, 'healthy again once Redis is back')
  t.equal(back.json().redis, 'up')
})

t.test('/metrics is for the admin: anonymous readers go to the login page', async (t) => {
  const app = await buildBlog(t, redis)
  const anonymous = await new Visitor(app).get('/metrics')
  t.equal(anonymous.statusCode, 302)
  t.equal(anonymous.headers.location, '/login')
  t.notMatch(anonymous.body, /fastify_cache_/)
})

t.test('/metrics serves the registry as Prometheus text, counting the readers\' responses by route', async (t) => {
  const app = await buildBlog(t, redis)
  const reader = new Visitor(app)
  for (const url of ['/', '/', '/post/1', '/post/1', '/post/2']) await reader.get(url)
  const editor = await admin(app)
  const response = await editor.get('/metrics')
  t.equal(response.statusCode, 200)
  t.equal(response.headers['content-type'], app.metricsRegistry.contentType)
  t.equal(response.body, await app.metricsRegistry.metrics(), 'exactly what the registry exposes')
  const lines = response.body.split('\n')
  for (const sample of [
    'fastify_cache_responses_total{route="/",result="miss"} 1',
    'fastify_cache_responses_total{route="/",result="hit"} 1',
    'fastify_cache_responses_total{route="/post/:id",result="miss"} 2',
    'fastify_cache_responses_total{route="/post/:id",result="hit"} 1'
  ]) t.ok(lines.includes(sample), sample)
  const responses = await app.metricsRegistry.getSingleMetric(METRIC_NAMES.responses)?.get()
  t.same(new Set(responses?.values.map((sample) => sample.labels.route)), new Set(['/', '/post/:id']), 'route patterns only')
  t.equal(response.headers['x-cache'], undefined, '/metrics itself is not cached')
})

t.test('the dashboard shows the lookup latency histogram beside the hit ratio', async (t) => {
  const app = await buildBlog(t, redis)
  const reader = new Visitor(app)
  for (const url of ['/', '/about', '/post/1', '/post/2', '/post/1']) await reader.get(url)
  const metric = await app.metricsRegistry.getSingleMetric(METRIC_NAMES.lookup)?.get()
  const lookups = (metric?.values ?? []).filter((sample) => (sample as { metricName?: string }).metricName?.endsWith('_count'))
    .reduce((sum, sample) => sum + sample.value, 0)
  t.ok(lookups >= 4, 'the cold pages were looked up in Redis')
  const page = (await (await admin(app)).get('/admin/cache')).body
  const table = /<table class="list latency" id="lookup-latency">([\s\S]*?)<\/table>/.exec(page)?.[1] ?? ''
  t.match(table, new RegExp(`<caption>${lookups} lookups past memory`), 'the total, from the registry')
  const rows = [...table.matchAll(/<tr><td>([^<]+)<\/td><td>(\d+)<\/td>/g)]
  t.equal(rows.length, 12, 'one row per bucket, +Inf included')
  t.equal(rows.reduce((sum, row) => sum + Number(row[2]), 0), lookups, 'the buckets add up to the total')
  t.equal(rows[0]?.[1], '≤ 0.5 ms')
  t.equal(rows.at(-1)?.[1], '&gt; 1 s', 'escaped')
  t.ok(page.indexOf('id="lookup-latency"') > page.indexOf('Hit ratio, last'), 'after the hit ratio chart')
})
