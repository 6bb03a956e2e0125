// The `onPurge` option on a real Redis: what each purge reports, and that the hook never fails the API call.
import t from 'tap'
import { MemoryStore, type PurgeContext, type PurgeEvent } from '../../plugin/index.js'
import { build, logCollector } from '../helpers/app.js'
import { redisForFile } from '../helpers/redis.js'

const { redis } = await redisForFile(t)

t.test('delete, deleteMany, invalidateTags and clear report what they purged', async (t) => {
  const events: PurgeEvent[] = []
  const app = await build(t, { redis, cache: { onPurge: (event) => { events.push(event) } } })
  const prefix = app.cache.prefix
  app.get('/', { config: { cache: true } }, async () => 'index')
  app.get('/post/:id', { config: { cache: { tags: (request) => [`post:${request.params.id}`] } } }, async () => 'post')
  await app.inject('/')
  await app.inject('/post/1')

  t.equal(await app.cache.delete('view//'), true)
  t.same(events.shift(), { keys: ['view//'], tags: [], all: false, tokens: ['view//'] })
  t.equal(await app.cache.delete('view//'), false, 'gone already')
  t.same(events.shift(), { keys: ['view//'], tags: [], all: false, tokens: ['view//'] },
    'reported all the same: the edge may hold a page the store no longer does')
  await app.cache.deleteMany(['view//about', 'view//post/2'])
  t.same(events.shift(), { keys: ['view//about', 'view//post/2'], tags: [], all: false, tokens: ['view//about', 'view//post/2'] })
  t.equal(await app.cache.invalidateTags(['post:1', 'two words']), 1)
  t.same(events.shift(), { keys: [], tags: ['post:1', 'two words'], all: false, tokens: ['post:1', 'two%20words'] })
  t.equal((await app.inject('/post/1')).headers['x-cache'], 'MISS', 'the purge happened')
  await app.cache.clear()
  t.same(events.shift(), { keys: [], tags: [], all: true, tokens: [prefix] })
  t.same(events, [], 'one event per call')
})

t.test('without onPurge, purges go on as before', async (t) => {
  const app = await build(t, { redis })
  app.get('/', { config: { cache: true } }, async () => 'index')
  await app.inject('/')
  t.equal(await app.cache.delete('view//'), true)
  t.equal((await app.inject('/')).headers['x-cache'], 'MISS')
})

t.test('other writes, and memoized values (never pages), report nothing', async (t) => {
  const events: PurgeEvent[] = []
  const app = await build(t, { redis, cache: { onPurge: (event) => { events.push(event) } } })
  await app.cache.set('a', 1)
  await app.cache.add('b', 2)
  await app.cache.setMany({ c: 3 })
  const render = app.cache.memoize(async (id: number) => `rendered ${id}`, { name: 'render' })
  await render(1)
  t.equal(await app.cache.deleteMemoized(render), true)
  await app.cache.deleteMemoized(render, 1)
  t.same(events, [])
})

t.test('the tokens are spelled for the edge header in use, and the hook is given the logger', async (t) => {
  const seen: Array<{ event: PurgeEvent, context: PurgeContext }> = []
  const app = await build(t, {
    redis,
    cache: { edge: { tagHeader: 'edge-cache-tag' }, onPurge: (event, context) => { seen.push({ event, context }) } }
  })
  await app.cache.deleteMany(['view//post/1'])
  await app.cache.invalidateTags(['post:1'])
  await app.cache.clear()
  t.same(seen.map(({ event }) => event.tokens), [['view%2F%2Fpost%2F1'], ['post%3A1'], [app.cache.prefix.replaceAll(':', '%3A')]])
  t.equal(seen[0]?.context.log, app.log)
})

t.test('the API call resolves once the hook has settled', async (t) => {
  let release: () => void = () => {}
  let started: () => void = () => {}
  const hookStarted = new Promise<void>((resolve) => { started = resolve })
  const app = await build(t, {
    redis,
    cache: {
      onPurge: async () => {
        started()
        await new Promise<void>((resolve) => { release = resolve })
      }
    }
  })
  let settled = false
  const deleting = app.cache.delete('view//').then(() => { settled = true })
  await hookStarted
  t.equal(settled, false, 'the store has purged, and the call still waits on the hook')
  release()
  await deleting
  t.equal(settled, true)
})

t.test('a hook that throws or rejects is logged; the purge stands and the call resolves', async (t) => {
  const { lines, logger } = logCollector('error')
  let calls = 0
  const app = await build(t, {
    redis,
    logger,
    cache: {
      onPurge: (event) => {
        calls++
        if (event.all) throw new Error('CDN down (sync)')
        return Promise.reject(new Error('CDN down (async)'))
      }
    }
  })
  app.get('/', { config: { cache: true } }, async () => 'index')
  await app.inject('/')
  t.equal(await app.cache.delete('view//'), true)
  t.equal(await app.cache.invalidateTags(['x']), 0)
  t.equal(typeof await app.cache.clear(), 'number')
  t.equal(calls, 3)
  t.equal((await app.inject('/')).headers['x-cache'], 'MISS')
  const failures = lines.filter((line) => /onPurge failed/.test(line.msg))
  t.equal(failures.length, 3)
  t.match(failures[0], { keys: ['view//'], err: { message: 'CDN down (async)' } })
  t.match(failures[2], { all: true, err: { message: 'CDN down (sync)' } })
})

t.test('a purge the store refused is not reported: nothing was purged', async (t) => {
  const store = new MemoryStore({ maxBytes: 1 << 20 })
  let calls = 0
  const app = await build(t, { cache: { store, onPurge: () => { calls++ } } })
  const down = async (): Promise<never> => { throw new Error('store down') }
  store.delete = down
  store.clear = down
  await t.rejects(app.cache.delete('view//'), { code: 'FST_CACHE_STORE_ERROR' })
  await t.rejects(app.cache.invalidateTags(['x']), { code: 'FST_CACHE_STORE_ERROR' })
  await t.rejects(app.cache.clear(), { code: 'FST_CACHE_STORE_ERROR' })
  t.equal(calls, 0)
})
