import t from 'tap'
import { Redis } from 'ioredis'
import { build } from '../helpers/app.js'
import { redisForFile, redisForTest, sleep } from '../helpers/redis.js'

const { redis, client } = await redisForFile(t)

t.test('invalidateTags purges every page and value carrying a tag, with every variant', async (t) => {
  const app = await build(t, { redis })
  const calls: Record<string, number> = {}
  app.get('/post/:id', {
    config: { cache: { queryString: true, tags: (request) => [`post:${(request.params as { id: string }).id}`, 'posts'] } }
  }, async (request) => {
    const id = (request.params as { id: string }).id
    calls[id] = (calls[id] ?? 0) + 1
    return `post ${id} v${calls[id]}`
  })
  app.get('/about', { config: { cache: { tags: ['static'] } } }, async () => 'about')
  for (const url of ['/post/1', '/post/1?x=1', '/post/2', '/about']) await app.inject(url)
  await app.cache.set('sidebar', ['post 1'], { ttl: 60, tags: ['post:1'] })
  const memo = app.cache.memoize(async (id: number) => `rendered ${id}`, { name: 'render', tags: ['post:1'] })
  await memo(1)
  await sleep(20)

  t.equal(await app.cache.invalidateTags(['post:1']), 3, 'the page, the value and the memoized function')
  await sleep(5) // a render that begins in the purge's own millisecond is refused: step past it
  t.equal((await app.inject('/post/1')).headers['x-cache'], 'MISS')
  t.equal((await app.inject('/post/1?x=1')).headers['x-cache'], 'MISS', 'every variant')
  t.equal((await app.inject('/post/2')).headers['x-cache'], 'HIT', 'other posts stay')
  t.equal((await app.inject('/about')).headers['x-cache'], 'HIT')
  t.equal(await app.cache.get('sidebar'), undefined)
  t.equal(await client.exists(app.cache.prefix + '__tags/post:1'), 1, 'the next write re-created the index')

  await app.inject('/post/1')
  t.equal(await app.cache.invalidateTags(['posts']), 2)
  t.equal((await app.inject('/post/2')).headers['x-cache'], 'MISS')
  await t.rejects(app.cache.invalidateTags('posts' as never), { code: 'FST_CACHE_INVALID_KEY' })
  await t.rejects(app.cache.set('x', 1, { tags: [''] }), { code: 'FST_CACHE_INVALID_OPTION' })
})

t.test('a tag index lives at least as long as its members, and the sweep drops dead members', async (t) => {
  const app = await build(t, { redis })
  await app.cache.set('short', 1, { ttl: 0.2, tags: ['t'] })
  await app.cache.set('long', 2, { ttl: 60, tags: ['t'] })
  const tagKey = app.cache.prefix + '__tags/t'
  const pttl = await client.pttl(tagKey)
  t.ok(pttl > 55_000, `the index outlives its longest member (${pttl}ms)`)
  await sleep(300)
  t.equal(await app.cache.pruneTags(), 1, 'the expired member is dropped')
  t.same((await client.hkeys(tagKey)).sort(), [app.cache.prefix + 'long'])
  t.equal(await app.cache.pruneTags(), 0)
  await app.cache.delete('long')
  t.equal(await app.cache.pruneTags(), 1, 'a deleted member is dropped too')
})

t.test('the sweep runs on its own every tagPruneIntervalMs', async (t) => {
  const app = await build(t, { redis, cache: { tagPruneIntervalMs: 100 } })
  await app.cache.set('gone-soon', 1, { ttl: 0.05, tags: ['auto'] })
  await app.ready()
  let members = 1
  for (let attempt = 0; attempt < 50 && members > 0; attempt++) {
    await sleep(50)
    members = await client.hlen(app.cache.prefix + '__tags/auto')
  }
  t.equal(members, 0, 'the dead member was swept without being asked')
})

t.test('grace: when the handler fails, the last good response is served as STALE', async (t) => {
  const app = await build(t, { redis })
  let failing = false
  let calls = 0
  app.get('/g', { config: { cache: { ttl: 0.1, grace: 60 } } }, async (_request, reply) => {
    calls++
    if (failing) throw new Error('database down')
    return reply.type('text/html').header('x-version', 'good').send('<p>good</p>')
  })
  app.get('/no-grace', { config: { cache: { ttl: 0.1 } } }, async () => {
    if (failing) throw new Error('database down')
    return 'good'
  })
  await app.inject('/g')
  await app.inject('/no-grace')
  await sleep(200)
  failing = true
  const stale = await app.inject('/g')
  t.equal(stale.statusCode, 200)
  t.equal(stale.headers['x-cache'], 'STALE')
  t.equal(stale.body, '<p>good</p>')
  t.equal(stale.headers['content-type'], 'text/html')
  t.equal(stale.headers['x-version'], 'good')
  t.equal(calls, 2, 'the handler was tried')
  t.equal(app.cache.stats().stale, 1)
  t.equal((await app.inject('/no-grace')).statusCode, 500, 'without grace the error goes out')
  failing = false
  const recovered = await app.inject('/g')
  t.equal(recovered.headers['x-cache'], 'MISS', 'a working handler replaces the stale copy')
  t.equal((await app.inject('/g')).headers['x-cache'], 'HIT')
})

t.test('grace ends: past it, a failing handler\'s error goes out', async (t) => {
  const app = await build(t, { redis })
  let failing = false
  app.get('/short-grace', { config: { cache: { ttl: 0.05, grace: 0.1 } } }, async () => {
    if (failing) throw new Error('down')
    return 'ok'
  })
  await app.inject('/short-grace')
  await sleep(300)
  failing = true
  t.equal((await app.inject('/short-grace')).statusCode, 500)
})

t.test('grace covers concurrent waiters when the one computing fails', async (t) => {
  const app = await build(t, { redis })
  let failing = false
  app.get('/gw', { config: { cache: { ttl: 0.05, grace: 60 } } }, async () => {
    if (failing) {
      await sleep(50)
      throw new Error('down')
    }
    return 'last good'
  })
  await app.inject('/gw')
  await sleep(100)
  failing = true
  const responses = await Promise.all(Array.from({ length: 10 }, async () => await app.inject('/gw')))
  t.ok(responses.every((response) => response.statusCode === 200 && response.body === 'last good'))
  t.ok(responses.every((response) => response.headers['x-cache'] === 'STALE'))
})

t.test('stale-while-revalidate: the stale page is served at once and refreshed once in the background', async (t) => {
  const app = await build(t, { redis })
  let version = 0
  let calls = 0
  app.get('/swr', { config: { cache: { ttl: 0.1, staleWhileRevalidate: 60, vary: ['accept-language'] } } }, async (request) => {
    calls++
    await sleep(30)
    return `v${++version} ${request.headers['accept-language'] ?? ''} ${request.headers.cookie ?? 'no cookie'}`
  })
  const headers = { 'accept-language': 'en', cookie: 'sid=visitor' }
  t.equal((await app.inject({ url: '/swr', headers })).body, 'v1 en sid=visitor')
  await sleep(200)
  const stale = await Promise.all(Array.from({ length: 20 }, async () => await app.inject({ url: '/swr', headers })))
  t.ok(stale.every((response) => response.headers['x-cache'] === 'STALE'), 'served stale without waiting')
  t.ok(stale.every((response) => response.body === 'v1 en sid=visitor'))
  let fresh
  for (let attempt = 0; attempt < 50; attempt++) {
    await sleep(20)
    fresh = await app.inject({ url: '/swr', headers })
    if (fresh.headers['x-cache'] === 'HIT') break
  }
  t.equal(fresh?.headers['x-cache'], 'HIT')
  t.equal(fresh?.body, 'v2 en no cookie', 'refreshed for the same variant, without the visitor\'s cookie')
  t.equal(calls, 2, 'one background refresh for 20 stale hits')
  t.ok(app.cache.stats().stale >= 20)
})

t.test('a forged revalidation header does not force a refresh', async (t) => {
  const app = await build(t, { redis })
  let calls = 0
  app.get('/forge', { config: { cache: true } }, async () => `v${++calls}`)
  await app.inject('/forge')
  const forged = await app.inject({ url: '/forge', headers: { 'x-fastify-cache-revalidate': 'guess' } })
  t.equal(forged.headers['x-cache'], 'HIT')
  t.equal(calls, 1)
})

t.test('a page computed in one process before a delete in another is never stored', async (t) => {
  // With L1 on, a write the store refused does not reach L1 either: `a` would answer 'old' from it.
  const a = await build(t, { redis, cache: { prefix: `${redis.prefix}shared:`, l1: true } })
  const b = await build(t, { redis, cache: { prefix: `${redis.prefix}shared:` } })
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  let content = 'old'
  a.get('/', { config: { cache: true } }, async () => {
    const rendered = content
    await gate
    return rendered
  })
  b.get('/', { config: { cache: true } }, async () => content)
  const slow = a.inject('/')
  await sleep(50)
  content = 'new'
  await b.cache.delete('view//')
  release()
  t.equal((await slow).body, 'old', 'the slow reader gets what it read')
  await sleep(50)
  const next = await b.inject('/')
  t.equal(next.body, 'new', 'but the old page was not stored')
  t.equal(next.headers['x-cache'], 'MISS')
  t.equal((await a.inject('/')).body, 'new')
  t.equal(a.cache.stats().l1Hits, 0, 'the refused page was never kept in L1')
})

t.test('stale-while-revalidate across processes: one refreshes the page, the other finds it locked', async (t) => {
  const prefix = `${redis.prefix}swr-fleet:`
  const a = await build(t, { redis, cache: { prefix } })
  const b = await build(t, { redis, cache: { prefix } })
  let calls = 0
  for (const app of [a, b]) {
    app.get('/shared', { config: { cache: { ttl: 0.1, staleWhileRevalidate: 60 } } }, async () => {
      const n = ++calls
      if (n > 1) await sleep(200)
      return `v${n}`
    })
  }
  t.equal((await a.inject('/shared')).body, 'v1')
  await sleep(150)
  const fromA = await a.inject('/shared')
  t.equal(fromA.headers['x-cache'], 'STALE')
  t.equal(fromA.body, 'v1')
  await sleep(50) // a's background refresh holds the page's lock while its handler runs
  const fromB = await b.inject('/shared')
  t.equal(fromB.headers['x-cache'], 'STALE')
  t.equal(fromB.body, 'v1')
  await sleep(400) // a's refresh (a 200ms handler) has ended, as would one b started
  t.equal(calls, 2, 'one refresh across both processes: b left the page to the holder of its lock')
  t.equal((await b.inject('/shared')).body, 'v2', 'b is served the page a refreshed')
})

t.test('a delete during a lookup keeps the page that lookup found out of L1', async (t) => {
  const own = await redisForTest(t, [], { own: true }) // paused below
  const admin = new Redis(own.url)
  t.teardown(async () => await admin.quit())
  const prefix = `${own.prefix}l1:`
  const writer = await build(t, { redis: own, cache: { prefix } })
  const reader = await build(t, { redis: own, cache: { prefix, l1: true } })
  let calls = 0
  for (const app of [writer, reader]) app.get('/p', { config: { cache: true } }, async () => `v${++calls}`)
  t.equal((await writer.inject('/p')).body, 'v1')
  t.equal(await writer.cache.has('view//p'), true, 'stored (in the store only: the writer has no L1)')

  // Every command waits for 300ms (well within the lookup budget); UNPAUSE would wait too.
  await admin.client('PAUSE', 300, 'ALL')
  const looking = reader.inject('/p')
  await sleep(50) // the reader's lookup is sent and waits on the paused server
  const deleting = reader.cache.delete('view//p')
  const found = await looking
  t.equal(found.headers['x-cache'], 'HIT', 'the lookup ran before the delete and found the page')
  t.equal(found.body, 'v1')
  t.equal(await deleting, true)
  const next = await reader.inject('/p')
  t.equal(next.headers['x-cache'], 'MISS', 'the page the delete removed was not kept in L1')
  t.equal(next.body, 'v2')
  t.equal(reader.cache.stats().l1Hits, 0)
})

t.test('a delete while a page is being written keeps that page out of L1', async (t) => {
  const own = await redisForTest(t, [], { own: true }) // paused below
  const admin = new Redis(own.url)
  t.teardown(async () => await admin.quit())
  const app = await build(t, { redis: own, cache: { l1: true } })
  let calls = 0
  app.get('/w', { config: { cache: true } }, async () => {
    // From here writes wait: the response goes out, and its write lands only after the delete below is issued.
    if (++calls === 1) await admin.client('PAUSE', 5_000, 'WRITE')
    return `v${calls}`
  })
  const first = await app.inject('/w')
  t.equal(first.headers['x-cache'], 'MISS')
  t.equal(first.body, 'v1')
  const deleting = app.cache.delete('view//w')
  await admin.client('UNPAUSE')
  t.equal(await deleting, true, 'the write landed first (one connection keeps order), and the delete removed it')
  const next = await app.inject('/w')
  t.equal(next.headers['x-cache'], 'MISS', 'the page written before the delete was not kept in L1')
  t.equal(next.body, 'v2')
  t.equal(app.cache.stats().l1Hits, 0)
})

t.test('L1 on a route with forceUpdate: hits come from L1 once forceUpdate declines, and a forced refresh replaces them', async (t) => {
  const app = await build(t, { redis, cache: { l1: true } })
  let calls = 0
  app.get('/lf', { config: { cache: { forceUpdate: (request) => request.headers['x-refresh'] === '1' } } }, async () => `v${++calls}`)
  app.get('/la', { config: { cache: { unless: async (request) => request.headers['x-user'] !== undefined } } }, async () => `a${++calls}`)
  const waitForL1 = async (): Promise<void> => await sleep(50) // L1 takes a page once the store has accepted it
  t.equal((await app.inject('/lf')).headers['x-cache'], 'MISS')
  await waitForL1()
  const hit = await app.inject('/lf')
  t.equal(hit.headers['x-cache'], 'HIT')
  t.equal(hit.body, 'v1')
  t.equal(app.cache.stats().l1Hits, 1, 'served from L1, after forceUpdate was asked')
  const forced = await app.inject({ url: '/lf', headers: { 'x-refresh': '1' } })
  t.equal(forced.headers['x-cache'], 'MISS')
  t.equal(forced.body, 'v2')
  await waitForL1()
  const after = await app.inject('/lf')
  t.equal(after.body, 'v2', 'the forced response replaced the L1 copy')
  t.equal(app.cache.stats().l1Hits, 2)

  t.equal((await app.inject('/la')).body, 'a3')
  await waitForL1()
  const asyncHit = await app.inject('/la')
  t.equal(asyncHit.body, 'a3')
  t.equal(app.cache.stats().l1Hits, 3, 'an async unless is settled, then L1 answers')
  t.equal(calls, 3)
})

t.test("grace covers a handler that times out (Fastify's handlerTimeout answers 503)", async (t) => {
  const app = await build(t, { redis })
  let slow = false
  app.get('/slow', { handlerTimeout: 100, config: { cache: { ttl: 0.05, grace: 60 } } }, async () => {
    if (slow) await sleep(400)
    return 'rendered in time'
  })
  await app.inject('/slow')
  await sleep(100)
  slow = true
  const response = await app.inject('/slow')
  t.equal(response.statusCode, 200)
  t.equal(response.headers['x-cache'], 'STALE')
  t.equal(response.body, 'rendered in time')
  await sleep(400) // let the abandoned handler finish before the app closes
})
