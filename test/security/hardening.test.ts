// What an anonymous client, or anyone who can write to the cache's Redis, could do before: evict the front page with
// spellings of one query, block every purge with one planted entry, replay headers that are never stored, stall a cold
// page behind a planted lock, and have responses that must be revalidated served as plain hits.
import t from 'tap'
import { framePage } from '../../plugin/entry.js'
import { build } from '../helpers/app.js'
import { redisForFile, variantCount } from '../helpers/redis.js'

const { redis, client } = await redisForFile(t)

/** A well-formed page entry as the plugin frames it, with `meta` planted as given (no checks on the way in). */
function planted (body: string, meta: Record<string, unknown> = {}): Buffer {
  return framePage({
    status: 200,
    headers: { 'content-type': 'text/plain; charset=utf-8' },
    createdAt: Date.now(),
    ttlMs: 300_000,
    staleMs: 0,
    tags: [],
    ...meta
  } as never, body).bytes
}

for (const storeName of ['redis', 'memory'] as const) {
  const options = storeName === 'redis' ? { redis } : {}

  t.test(`${storeName}: spellings of one query value are one variant, and a flood of variants never evicts the plain page`, async (t) => {
    const app = await build(t, { ...options, cache: { maxVariants: 8 } })
    let renders = 0
    app.get('/', {
      schema: { querystring: { type: 'object', properties: { page: { type: 'integer', minimum: 1 } } } },
      config: { cache: { queryString: ['page'] } }
    }, async (request) => {
      renders++
      return `page ${(request.query as { page?: number }).page ?? 1}`
    })
    await app.ready()
    t.equal((await app.inject('/')).headers['x-cache'], 'MISS')
    t.equal((await app.inject('/?page=1')).headers['x-cache'], 'MISS')
    const before = renders
    for (const spelling of ['01', '1.0', '+1', '1e0', '001']) {
      const response = await app.inject(`/?page=${spelling}`)
      t.equal(response.headers['x-cache'], 'HIT', `?page=${spelling} reads the variant of page 1`)
      t.equal(response.body, 'page 1')
    }
    t.equal(renders, before, 'no spelling ran the handler')
    t.equal((await app.inject('/?page=zero')).statusCode, 400, 'a value the schema refuses is its 400, uncached')

    for (let page = 2; page < 40; page++) await app.inject(`/?page=${page}`)
    const plain = await app.inject('/')
    t.equal(plain.headers['x-cache'], 'HIT', 'the plain page outlived 38 other variants on a bound of 8')
    t.equal(plain.body, 'page 1')
    t.equal((await app.inject('/?page=39')).headers['x-cache'], 'HIT', 'the most recently written variant is kept')
    t.equal((await app.inject('/?page=2')).headers['x-cache'], 'MISS', 'the least recently written went first')
    if (storeName === 'redis') t.ok(await variantCount(client, `${app.cache.prefix}view//`) <= 8, 'within maxVariants')
  })

  t.test(`${storeName}: responses that must be revalidated are not served as hits; proxy credentials bypass`, async (t) => {
    const app = await build(t, options)
    let renders = 0
    const directives = ['no-cache', 's-maxage=0', 'public, s-maxage=0, max-age=60', 'no-cache="set-cookie"']
    for (const [i, directive] of directives.entries()) {
      app.get(`/cc/${i}`, { config: { cache: true } }, async (_request, reply) => {
        renders++
        reply.header('cache-control', directive)
        return 'must revalidate'
      })
    }
    app.get('/user', { config: { cache: true } }, async (request) => `hello ${request.headers['proxy-authorization'] ?? 'anonymous'}`)
    await app.ready()
    for (const [i, directive] of directives.entries()) {
      const url = `/cc/${i}`
      t.equal((await app.inject(url)).headers['x-cache'], 'BYPASS', `${directive}: not stored`)
      t.equal((await app.inject(url)).headers['x-cache'], 'BYPASS', `${directive}: never a hit`)
    }
    t.equal(renders, 8)
    const alice = await app.inject({ url: '/user', headers: { 'proxy-authorization': 'Basic YWxpY2U6cw==' } })
    t.equal(alice.headers['x-cache'], 'BYPASS')
    const bob = await app.inject({ url: '/user', headers: { 'proxy-authorization': 'Basic Ym9iOnM=' } })
    t.equal(bob.body, 'hello Basic Ym9iOnM=', "one user's page is never served to another")
    t.equal((await app.inject('/user')).headers['x-cache'], 'MISS', 'an anonymous request computes its own')
    t.equal((await app.inject({ url: '/user', headers: { 'cache-control': 'no-store' } })).headers['x-cache'], 'BYPASS',
      'a request that asks for no-store neither reads nor writes')
  })
}

t.test('a planted entry whose tags are a string cannot block purges from L1', async (t) => {
  const app = await build(t, { redis, cache: { l1: true } })
  let version = 1
  app.get('/post/:id', { config: { cache: { tags: (request) => [`post:${request.params.id}`] } } }, async () => `post v${version}`)
  await app.ready()
  await client.hset(`${app.cache.prefix}view//post/1`, '', planted('planted post', { tags: 'post:1' }))
  const first = await app.inject('/post/1')
  t.equal(first.headers['x-cache'], 'MISS', 'the planted entry is corrupt: a miss')
  t.equal(first.body, 'post v1')
  t.equal((await app.inject('/post/1')).headers['x-cache'], 'HIT')
  version = 2
  t.equal(await app.cache.invalidateTags(['post:1']), 1, 'the purge reaches the store')
  const after = await app.inject('/post/1')
  t.equal(after.body, 'post v2', 'and L1 lets the edit through')
  t.equal(app.cache.stats().errors, 1, 'the planted entry was counted')
})

t.test('headers that are never stored are never served from storage either', async (t) => {
  const app = await build(t, { redis })
  app.get('/', { config: { cache: true } }, async () => 'home')
  await app.ready()
  for (const header of [{ 'set-cookie': 'blog_session=planted' }, { 'transfer-encoding': 'chunked' },
    { connection: 'close' }, { 'content-length': '2' }, { 'Content-Type': 'text/plain' }]) {
    await client.hset(`${app.cache.prefix}view//`, '', planted('home', { headers: { 'content-type': 'text/plain', ...header } }))
    const response = await app.inject('/')
    t.equal(response.headers['x-cache'], 'MISS', `${Object.keys(header)[0] ?? ''}: the entry is corrupt, not served`)
    t.equal(response.headers['set-cookie'], undefined)
    t.equal(response.headers['transfer-encoding'], undefined)
    t.equal(response.body, 'home')
  }
})

t.test('a planted lock with a far-future expiry does not stall a cold page', async (t) => {
  // A lock timeout longer than this file's test timeout: a request that waited for the planted lock would never end.
  const app = await build(t, { redis, cache: { lockTimeoutMs: 10 * 60_000 } })
  let renders = 0
  app.get('/cold', { config: { cache: true } }, async () => `cold #${++renders}`)
  await app.ready()
  const key = `${app.cache.prefix}view//cold`
  const year3000 = Date.parse('3000-01-01T00:00:00Z')
  await client.hset(key, ' lock ', `attacker ${year3000}`, 'other', 'x')
  const response = await app.inject('/cold')
  t.equal(response.body, 'cold #1', 'computed at once')
  t.equal(response.headers['x-cache'], 'MISS')
  t.equal((await app.inject('/cold')).headers['x-cache'], 'HIT', 'and stored')
  t.notOk((await client.hget(key, ' lock ') ?? '').startsWith('attacker'), 'the planted lock was taken over')
})

t.test('entries with times that are not finite numbers, or an etag that is not one, are corrupt', async (t) => {
  const app = await build(t, { redis })
  app.get('/', { config: { cache: true } }, async () => 'home')
  await app.ready()
  for (const meta of [{ createdAt: 'now' }, { ttlMs: -5 }, { createdAt: Infinity }, { etag: 'no quotes' }, { tags: [''] },
    { headers: null }, { headers: ['content-type', 'text/plain'] }]) {
    await client.hset(`${app.cache.prefix}view//`, '', planted('planted', meta))
    const response = await app.inject('/')
    t.equal(response.body, 'home', `${JSON.stringify(meta)}: not served`)
  }
})

t.test('the parsed query of a route whose validator compiler answers { value } or { error } (not Ajv)', async (t) => {
  const app = await build(t)
  let renders = 0
  app.get('/list', {
    schema: { querystring: { type: 'object' } },
    // A compiler in the style Fastify accepts from Joi or TypeBox adapters: it answers a value, or an error.
    validatorCompiler: () => (data: unknown) => {
      const query = data as Record<string, string | string[]>
      const tags = ([] as string[]).concat(query.tag ?? []).map((tag) => tag.toLowerCase())
      return tags.includes('bad') ? { error: new Error('bad tag') } : { value: { tag: tags } }
    },
    config: { cache: { queryString: true } }
  }, async () => `list #${++renders}`)
  await app.ready()
  t.equal((await app.inject('/list?tag=a&tag=b')).headers['x-cache'], 'MISS')
  const same = await app.inject('/list?tag=A&tag=B')
  t.equal(same.headers['x-cache'], 'HIT', 'keyed by the value the compiler answered')
  t.equal(same.body, 'list #1')
  t.equal((await app.inject('/list?tag=bad')).statusCode, 400, 'its error is a 400, not cached')
  t.equal(renders, 1)
})

t.test('a query the schema fills with defaults is still stored at its canonical URL', async (t) => {
  const app = await build(t, { redis })
  app.get('/', {
    schema: { querystring: { type: 'object', properties: { page: { type: 'integer' }, sort: { type: 'string', default: 'new' } } } },
    config: { cache: { queryString: true } }
  }, async (request) => JSON.stringify(request.query))
  await app.ready()
  t.equal((await app.inject('/?page=2')).headers['x-cache'], 'MISS')
  const hit = await app.inject('/?page=2')
  t.equal(hit.headers['x-cache'], 'HIT', 'stored although the schema added sort')
  t.equal(hit.body, '{"page":2,"sort":"new"}')
  t.equal((await app.inject('/?page=2&sort=old')).headers['x-cache'], 'MISS', 'a value sent is keyed')
})

t.test('a cache-status the handler sent is neither stored nor served on a hit', async (t) => {
  const app = await build(t, { redis })
  app.get('/', { config: { cache: true } }, async (_request, reply) => { reply.header('cache-status', 'upstream; hit'); return 'x' })
  await app.ready()
  await app.inject('/')
  const hit = await app.inject('/')
  t.equal(hit.headers['x-cache'], 'HIT')
  t.match(String(hit.headers['cache-status']), /^fastify-cache; hit/)
  await client.hset(`${app.cache.prefix}view//`, '', planted('x', { headers: { 'cache-status': 'planted' } }))
  t.equal((await app.inject('/')).headers['x-cache'], 'MISS', 'a planted one makes the entry corrupt')
})
