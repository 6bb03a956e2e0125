import t from 'tap'
import { Readable } from 'node:stream'
import { Redis } from 'ioredis'
import { RedisStore } from '../../plugin/index.js'
import { build, logCollector } from '../helpers/app.js'
import { redisForFile, sleep, variantCount } from '../helpers/redis.js'

const { redis, client } = await redisForFile(t)

t.test('MISS then HIT with the same status, headers and bytes, including a binary body', async (t) => {
  const app = await build(t, { redis })
  let calls = 0
  const binary = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0xff, 0xfe, 0xc3, 0x28, 0x0a])
  app.get('/img', { config: { cache: { ttl: 60 } } }, async (_request, reply) => {
    calls++
    reply.header('content-type', 'image/png').header('x-custom', 'kept').header('cache-control', 'public, max-age=60')
    return binary
  })
  const miss = await app.inject('/img')
  t.equal(miss.statusCode, 200)
  t.equal(miss.headers['x-cache'], 'MISS')
  const hit = await app.inject('/img')
  t.equal(hit.headers['x-cache'], 'HIT')
  t.equal(calls, 1, 'the handler ran once')
  t.ok(hit.rawPayload.equals(binary), 'the bytes are identical')
  t.ok(miss.rawPayload.equals(hit.rawPayload))
  for (const header of ['content-type', 'x-custom', 'cache-control', 'etag', 'content-length']) {
    t.equal(hit.headers[header], miss.headers[header], `${header} is the same`)
  }
  t.match(hit.headers.age, /^\d+$/)
  t.match(hit.headers.etag, /^"[\w-]+"$/)
})

t.test('a string body with multibyte characters: MISS and HIT send the same UTF-8 bytes, length and etag', async (t) => {
  const app = await build(t, { redis })
  const html = '<p>中文 héllo ✓ 𝄞</p>'
  app.get('/s', { config: { cache: { ttl: 60 } } }, async (_request, reply) => reply.type('text/html; charset=utf-8').send(html))
  app.get('/f', { config: { cache: { ttl: 60, filter: (_request, _reply, payload) => payload.equals(Buffer.from(html)) } } },
    async (_request, reply) => reply.type('text/html; charset=utf-8').send(html))
  for (const url of ['/s', '/f']) {
    const miss = await app.inject(url)
    const hit = await app.inject(url)
    t.equal(miss.headers['x-cache'], 'MISS', url)
    t.equal(hit.headers['x-cache'], 'HIT', `${url}: stored (the filter was given the UTF-8 bytes)`)
    t.equal(miss.body, html)
    t.equal(hit.body, html)
    t.equal(miss.headers['content-length'], String(Buffer.byteLength(html)))
    t.equal(hit.headers['content-length'], miss.headers['content-length'])
    t.equal(hit.headers.etag, miss.headers.etag)
  }
})

t.test('the Redis key is <prefix>view/<path> with a TTL, and the body is stored as raw bytes', async (t) => {
  const app = await build(t, { redis })
  const html = '<!doctype html><p>"quoted" & <b>bold</b> 中文</p>'
  app.get('/', { config: { cache: { ttl: 20 * 60 } } }, async (_request, reply) => reply.type('text/html').send(html))
  await app.inject('/')
  const key = app.cache.prefix + 'view//'
  const pttl = await client.pttl(key)
  t.ok(pttl > 0 && pttl <= 20 * 60 * 1000, `TTL set (${pttl}ms)`)
  const stored = await client.hgetBuffer(key, '')
  t.ok(stored !== null)
  t.ok(stored!.includes(Buffer.from(html)), 'the HTML is stored verbatim, not escaped or base64-encoded')
  t.equal(await app.cache.has('view//'), true)
})

t.test('entries expire after their ttl', async (t) => {
  const app = await build(t, { redis })
  let calls = 0
  app.get('/short', { config: { cache: { ttl: 0.3 } } }, async () => `call ${++calls}`)
  t.equal((await app.inject('/short')).body, 'call 1')
  t.equal((await app.inject('/short')).headers['x-cache'], 'HIT')
  await sleep(450)
  const after = await app.inject('/short')
  t.equal(after.headers['x-cache'], 'MISS')
  t.equal(after.body, 'call 2')
})

t.test('query strings: off by default (a query bypasses), or keyed by name', async (t) => {
  const app = await build(t, { redis })
  app.get('/plain', { config: { cache: true } }, async (request) => `q=${JSON.stringify(request.query)}`)
  app.get('/all', { config: { cache: { queryString: true } } }, async (request) => `q=${JSON.stringify(request.query)}`)
  app.get('/paged', { config: { cache: { queryString: ['page'] } } }, async (request) => `page ${(request.query as { page?: string }).page ?? 1}`)

  await app.inject('/plain')
  const withQuery = await app.inject('/plain?x=1')
  t.equal(withQuery.headers['x-cache'], 'BYPASS', 'an unkeyed query never reads or writes the page')
  t.equal(withQuery.body, 'q={"x":"1"}', 'and the handler sees the query')
  t.equal((await app.inject('/plain')).body, 'q={}', 'nor does it poison the plain page')

  t.equal((await app.inject('/all?b=2&a=1')).headers['x-cache'], 'MISS')
  t.equal((await app.inject('/all?a=1&b=2')).headers['x-cache'], 'HIT', 'parameter order does not matter')
  t.equal((await app.inject('/all?a=1&b=3')).headers['x-cache'], 'MISS', 'values do')

  t.equal((await app.inject('/paged?page=2')).body, 'page 2')
  const extra = await app.inject('/paged?page=2&utm_source=x')
  t.equal(extra.headers['x-cache'], 'HIT', 'unkeyed parameters read the keyed variant')
  t.equal(extra.body, 'page 2')
  const poison = await app.inject('/paged?page=3&evil=1')
  t.equal(poison.headers['x-cache'], 'BYPASS', 'but a miss with unkeyed parameters is never stored')
  t.equal((await app.inject('/paged?page=3')).headers['x-cache'], 'MISS')
  t.equal((await app.inject('/paged')).body, 'page 1')
})

t.test('vary headers select variants; delete(view/<path>) removes every variant', async (t) => {
  const app = await build(t, { redis })
  let calls = 0
  app.get('/greet', { config: { cache: { vary: ['Accept-Language'], queryString: true } } }, async (request) => {
    calls++
    return `hello ${request.headers['accept-language'] ?? 'none'} ${JSON.stringify(request.query)}`
  })
  const en = await app.inject({ url: '/greet', headers: { 'accept-language': 'en' } })
  const fr = await app.inject({ url: '/greet', headers: { 'accept-language': 'fr' } })
  const none = await app.inject('/greet')
  const query = await app.inject({ url: '/greet?x=1', headers: { 'accept-language': 'en' } })
  t.same([en.body, fr.body, none.body, query.body], ['hello en {}', 'hello fr {}', 'hello none {}', 'hello en {"x":"1"}'])
  t.equal((await app.inject({ url: '/greet', headers: { 'accept-language': 'fr' } })).body, 'hello fr {}')
  t.equal((await app.inject({ url: '/greet', headers: { 'accept-language': 'fr' } })).headers['x-cache'], 'HIT')
  t.equal(calls, 4)
  t.equal(await variantCount(client, app.cache.prefix + 'view//greet'), 4, 'four variants under one key')

  t.equal(await app.cache.delete('view//greet'), true)
  for (const request of [{ url: '/greet', headers: { 'accept-language': 'en' } }, { url: '/greet?x=1', headers: { 'accept-language': 'en' } }, { url: '/greet' }]) {
    t.equal((await app.inject(request)).headers['x-cache'], 'MISS', `${request.url} purged`)
  }
})

t.test('HEAD is served from the GET entry and never writes one', async (t) => {
  const app = await build(t, { redis })
  let calls = 0
  app.get('/h', { config: { cache: true } }, async (_request, reply) => reply.type('text/html').send(`<p>${++calls}</p>`))
  const headMiss = await app.inject({ method: 'HEAD', url: '/h' })
  t.equal(headMiss.statusCode, 200)
  t.equal(headMiss.headers['x-cache'], 'BYPASS')
  t.equal((await app.inject('/h')).headers['x-cache'], 'MISS', 'HEAD stored nothing')
  const head = await app.inject({ method: 'HEAD', url: '/h' })
  t.equal(head.headers['x-cache'], 'HIT')
  t.equal(head.body, '')
  t.equal(head.headers['content-type'], 'text/html')
  t.equal(head.headers['content-length'], String(Buffer.byteLength('<p>2</p>')))
  t.equal(calls, 2)
})

t.test('ETag and If-None-Match give 304', async (t) => {
  const app = await build(t, { redis })
  app.get('/e', { config: { cache: true } }, async () => 'etagged')
  const miss = await app.inject('/e')
  const etag = miss.headers.etag as string
  t.ok(etag)
  const notModified = await app.inject({ url: '/e', headers: { 'if-none-match': etag } })
  t.equal(notModified.statusCode, 304)
  t.equal(notModified.body, '')
  t.equal(notModified.headers.etag, etag)
  t.equal(notModified.headers['x-cache'], 'HIT')
  t.equal((await app.inject({ url: '/e', headers: { 'if-none-match': `"other", W/${etag}` } })).statusCode, 304, 'weak match in a list')
  t.equal((await app.inject({ url: '/e', headers: { 'if-none-match': '*' } })).statusCode, 304)
  const changed = await app.inject({ url: '/e', headers: { 'if-none-match': '"stale"' } })
  t.equal(changed.statusCode, 200)
  t.equal(changed.body, 'etagged')
})

t.test('a handler etag is kept', async (t) => {
  const app = await build(t, { redis })
  app.get('/own', { config: { cache: true } }, async (_request, reply) => reply.header('etag', '"v7"').send('mine'))
  await app.inject('/own')
  t.equal((await app.inject('/own')).headers.etag, '"v7"')
})

t.test('a weak handler etag is kept, and If-None-Match compares it weakly', async (t) => {
  const app = await build(t, { redis })
  let calls = 0
  app.get('/weak', { config: { cache: true } }, async (_request, reply) => { calls++; return reply.header('etag', 'W/"w1"').send('weak') })
  t.equal((await app.inject('/weak')).headers.etag, 'W/"w1"')
  const hit = await app.inject('/weak')
  t.equal(hit.headers['x-cache'], 'HIT')
  t.equal(hit.headers.etag, 'W/"w1"')
  for (const header of ['"w1"', 'W/"w1"', '"other", "w1"']) {
    const response = await app.inject({ url: '/weak', headers: { 'if-none-match': header } })
    t.equal(response.statusCode, 304, `If-None-Match: ${header}`)
    t.equal(response.body, '')
    t.equal(response.headers['x-cache'], 'HIT')
  }
  const other = await app.inject({ url: '/weak', headers: { 'if-none-match': 'W/"w2"' } })
  t.equal(other.statusCode, 200, 'another weak tag does not match')
  t.equal(other.body, 'weak')
  t.equal(calls, 1)
})

t.test('a header with several values is stored and restored as a list', async (t) => {
  const app = await build(t, { redis })
  let calls = 0
  const links = ['</a.css>; rel=preload; as=style', '</b.js>; rel=preload; as=script']
  app.get('/links', { config: { cache: true } }, async (_request, reply) => {
    calls++
    return reply.header('link', links).header('x-count', 3).send('linked')
  })
  const miss = await app.inject('/links')
  t.equal(miss.headers['x-cache'], 'MISS')
  t.same(miss.headers.link, links)
  const hit = await app.inject('/links')
  t.equal(hit.headers['x-cache'], 'HIT')
  t.same(hit.headers.link, links, 'both values, in order')
  t.equal(hit.headers['x-count'], '3', 'a number is stored as its string')
  t.equal(hit.body, 'linked')
  t.equal(calls, 1)
})

t.test('an empty reply is stored and served as an empty body', async (t) => {
  const app = await build(t, { redis })
  let calls = 0
  app.get('/empty', { config: { cache: true } }, async (_request, reply) => { calls++; return reply.header('x-empty', 'yes').send() })
  const miss = await app.inject('/empty')
  t.equal(miss.statusCode, 200)
  t.equal(miss.headers['x-cache'], 'MISS')
  t.equal(miss.body, '')
  const hit = await app.inject('/empty')
  t.equal(hit.headers['x-cache'], 'HIT')
  t.equal(hit.statusCode, 200)
  t.equal(hit.body, '')
  t.equal(hit.headers['content-length'], '0')
  t.equal(hit.headers['x-empty'], 'yes')
  t.equal(hit.headers.etag, miss.headers.etag)
  t.equal(calls, 1)
})

t.test('never stored: set-cookie, no-store, private, 500, 404, POST, authorization, vary *', async (t) => {
  const app = await build(t, { redis })
  const calls: Record<string, number> = {}
  const count = (name: string): number => (calls[name] = (calls[name] ?? 0) + 1)
  app.get('/cookie', { config: { cache: true } }, async (_request, reply) => { count('cookie'); return reply.header('set-cookie', 'sid=secret').send('c') })
  app.get('/nostore', { config: { cache: true } }, async (_request, reply) => { count('nostore'); return reply.header('cache-control', 'no-store').send('n') })
  app.get('/private', { config: { cache: true } }, async (_request, reply) => { count('private'); return reply.header('cache-control', 'Private, max-age=10').send('p') })
  app.get('/boom', { config: { cache: true } }, async () => { count('boom'); throw new Error('boom') })
  app.get('/missing', { config: { cache: true } }, async (_request, reply) => { count('missing'); return reply.code(404).send('nope') })
  app.get('/star', { config: { cache: true } }, async (_request, reply) => { count('star'); return reply.header('vary', '*').send('s') })
  app.route({ method: ['GET', 'POST'], url: '/both', config: { cache: true }, handler: async (request) => { count('both'); return request.method } })
  app.get('/auth', { config: { cache: true } }, async () => { count('auth'); return 'for one user' })
  app.get('/auth-ok', { config: { cache: { allowAuthorization: true } } }, async () => { count('auth-ok'); return 'shared' })

  for (const url of ['/cookie', '/nostore', '/private', '/boom', '/missing', '/star']) {
    const first = await app.inject(url)
    const second = await app.inject(url)
    t.not(second.headers['x-cache'], 'HIT', `${url} not served from the cache`)
    t.equal(first.headers['x-cache'], 'BYPASS', `${url} is marked BYPASS`)
  }
  t.equal((await app.inject('/boom')).statusCode, 500)
  t.same(calls, { cookie: 2, nostore: 2, private: 2, boom: 3, missing: 2, star: 2 })
  t.equal((await app.inject('/cookie')).headers['set-cookie'], 'sid=secret')

  t.equal((await app.inject({ method: 'POST', url: '/both' })).headers['x-cache'], 'BYPASS')
  t.equal((await app.inject({ method: 'POST', url: '/both' })).body, 'POST')
  t.equal((await app.inject('/both')).headers['x-cache'], 'MISS', 'POST stored nothing')

  const authorized = await app.inject({ url: '/auth', headers: { authorization: 'Bearer a' } })
  t.equal(authorized.headers['x-cache'], 'BYPASS')
  t.equal((await app.inject('/auth')).headers['x-cache'], 'MISS', 'the authorized response was not stored')
  t.equal((await app.inject({ url: '/auth', headers: { authorization: 'Bearer a' } })).headers['x-cache'], 'BYPASS', 'nor is it served the shared page')
  await app.inject({ url: '/auth-ok', headers: { authorization: 'Bearer a' } })
  t.equal((await app.inject({ url: '/auth-ok', headers: { authorization: 'Bearer b' } })).headers['x-cache'], 'HIT', 'the route opted in')
  const keys = (await app.cache.keys()).map(({ key }) => key).sort()
  t.same(keys, ['view//auth', 'view//auth-ok', 'view//both'])
})

t.test('statusCodes opts other statuses in', async (t) => {
  const app = await build(t, { redis })
  let calls = 0
  app.get('/gone', { config: { cache: { statusCodes: [200, 404] } } }, async (_request, reply) => { calls++; return reply.code(404).send('gone') })
  await app.inject('/gone')
  const hit = await app.inject('/gone')
  t.equal(hit.statusCode, 404)
  t.equal(hit.headers['x-cache'], 'HIT')
  t.equal(calls, 1)
  t.equal((await app.inject({ url: '/gone', headers: { 'if-none-match': hit.headers.etag as string } })).statusCode, 404, 'no 304 for a cached 404')
})

t.test('unless bypasses; forceUpdate recomputes and stores; filter vetoes', async (t) => {
  const app = await build(t, { redis })
  let calls = 0
  app.get('/u', {
    config: {
      cache: {
        unless: (request) => request.headers['x-user'] !== undefined,
        forceUpdate: (request) => request.headers['x-refresh'] === '1'
      }
    }
  }, async (request) => `page ${++calls} for ${request.headers['x-user'] ?? 'anon'}`)
  app.get('/f', { config: { cache: { filter: (_request, _reply, payload) => !payload.toString().includes('error') } } },
    async (request) => (request.headers['x-fail'] !== undefined ? 'error page' : 'good page'))
  app.get('/async-unless', { config: { cache: { unless: async () => true } } }, async () => 'x')

  t.equal((await app.inject('/u')).body, 'page 1 for anon')
  const loggedIn = await app.inject({ url: '/u', headers: { 'x-user': 'admin' } })
  t.equal(loggedIn.headers['x-cache'], 'BYPASS')
  t.equal(loggedIn.body, 'page 2 for admin', 'a logged-in user gets their own page')
  t.equal((await app.inject('/u')).body, 'page 1 for anon', 'and it was not stored')
  const forced = await app.inject({ url: '/u', headers: { 'x-refresh': '1' } })
  t.equal(forced.headers['x-cache'], 'MISS')
  t.equal(forced.body, 'page 3 for anon')
  const after = await app.inject('/u')
  t.equal(after.headers['x-cache'], 'HIT')
  t.equal(after.body, 'page 3 for anon', 'the forced response replaced the cached one')

  t.equal((await app.inject({ url: '/f', headers: { 'x-fail': '1' } })).headers['x-cache'], 'BYPASS')
  t.equal((await app.inject('/f')).headers['x-cache'], 'MISS', 'the filtered response was not stored')
  t.equal((await app.inject('/f')).headers['x-cache'], 'HIT')
  t.equal((await app.inject('/async-unless')).headers['x-cache'], 'BYPASS')
})

t.test('a throwing unless, key or filter never fails the request', async (t) => {
  const app = await build(t, { redis })
  app.get('/bad-unless', { config: { cache: { unless: () => { throw new Error('bug') } } } }, async () => 'served')
  app.get('/bad-key', { config: { cache: { key: () => { throw new Error('bug') } } } }, async () => 'served')
  app.get('/bad-filter', { config: { cache: { filter: () => { throw new Error('bug') } } } }, async () => 'served')
  for (const url of ['/bad-unless', '/bad-key', '/bad-filter']) {
    const response = await app.inject(url)
    t.equal(response.statusCode, 200, url)
    t.equal(response.body, 'served')
    t.equal(response.headers['x-cache'], 'BYPASS')
  }
})

t.test('a forceUpdate that throws or rejects is logged, and the page is served uncached', async (t) => {
  const { lines, logger } = logCollector('warn')
  const app = await build(t, { redis, logger })
  let calls = 0
  app.get('/force-throws', { config: { cache: { forceUpdate: () => { throw new Error('sync force bug') } } } }, async () => `served ${++calls}`)
  app.get('/force-rejects', { config: { cache: { forceUpdate: async () => { throw new Error('async force bug') } } } }, async () => `served ${++calls}`)
  for (const url of ['/force-throws', '/force-rejects', '/force-throws', '/force-rejects']) {
    const response = await app.inject(url)
    t.equal(response.statusCode, 200, url)
    t.match(response.body, /^served \d$/)
    t.equal(response.headers['x-cache'], 'BYPASS', `${url} bypasses`)
  }
  t.equal(calls, 4, 'every request ran the handler: nothing was stored')
  t.same(await app.cache.keys(), [])
  t.equal(app.cache.stats().bypasses, 4)
  t.ok(lines.some((line) => line.msg.includes('a route cache option threw') && JSON.stringify(line.err).includes('sync force bug')), 'the throw is logged')
})

t.test('an async unless is settled before the key: a rejection is logged, and excluded requests never reach key()', async (t) => {
  const unhandled: unknown[] = []
  const onUnhandled = (reason: unknown): void => { unhandled.push(reason) }
  process.on('unhandledRejection', onUnhandled)
  t.teardown(() => { process.off('unhandledRejection', onUnhandled) })
  const app = await build(t, { redis })
  let keyCalls = 0
  app.get('/rejects', { config: { cache: { unless: async () => { throw new Error('async bug') } } } }, async () => 'served')
  app.get('/excluded', {
    config: {
      cache: {
        unless: async (request) => request.headers['x-member'] !== undefined,
        key: (request) => { keyCalls++; return `member/${String(request.headers['x-member'] ?? 'anonymous')}` }
      }
    }
  }, async () => 'page')
  let plainCalls = 0
  app.get('/let-through', { config: { cache: { unless: async () => false } } }, async (request) => `plain ${++plainCalls} ${JSON.stringify(request.query)}`)
  // A query string on a route that keys none: the request bypasses, and the rejection must still be handled.
  for (const url of ['/rejects', '/rejects?x=1']) {
    const response = await app.inject(url)
    t.equal(response.statusCode, 200, url)
    t.equal(response.body, 'served')
    t.equal(response.headers['x-cache'], 'BYPASS')
  }
  t.equal((await app.inject({ url: '/excluded', headers: { 'x-member': 'ann' } })).headers['x-cache'], 'BYPASS')
  t.equal(keyCalls, 0, 'key() is not called for a request that unless excludes')
  t.equal((await app.inject('/excluded')).headers['x-cache'], 'MISS')
  t.equal(keyCalls, 1)
  // Let through by unless, then bypassed by the key: an unkeyed query string on a route that keys none.
  const unkeyed = await app.inject('/let-through?x=1')
  t.equal(unkeyed.headers['x-cache'], 'BYPASS')
  t.equal(unkeyed.body, 'plain 1 {"x":"1"}')
  t.equal((await app.inject('/let-through')).headers['x-cache'], 'MISS', 'the unkeyed request stored nothing')
  t.equal((await app.inject('/let-through')).body, 'plain 2 {}')
  await sleep(20)
  t.same(unhandled, [], 'no unhandled rejection')
})

t.test('a custom store that throws instead of rejecting fails open like one that rejects: the request is still answered', async (t) => {
  // A real Redis store whose unlockField throws synchronously, as a hand-written store's non-async method may.
  class ThrowingUnlockStore extends RedisStore {
    override unlockField (): Promise<boolean> { throw new Error('unlockField threw synchronously') }
  }
  const storeClient = new Redis(redis.url)
  t.teardown(async () => { await storeClient.quit().catch(() => {}) })
  const { lines, logger } = logCollector('warn')
  const app = await build(t, {
    logger,
    cache: { store: new ThrowingUnlockStore(storeClient), lockTimeoutMs: 100 }
  })
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  let calls = 0
  app.get('/slow', { config: { cache: true } }, async () => {
    const n = ++calls
    if (n === 1) await gate
    return `v${n}`
  })
  const first = app.inject('/slow')
  await sleep(250) // the first request's fleet lock (lockTimeoutMs) expires while its handler runs
  // The second lookup takes the expired lock, finds the first request's computation here, and releases the lock: the
  // store throws there, and the request waits for that computation all the same.
  const second = app.inject('/slow')
  await sleep(50)
  t.ok(lines.some((line) => JSON.stringify(line.err).includes('unlockField threw synchronously') && line.msg.includes('could not be released')),
    'the failure is logged as a lock left to expire')
  release()
  const [one, two] = await Promise.all([first, second])
  t.equal(one.statusCode, 200)
  t.equal(one.body, 'v1')
  t.equal(two.statusCode, 200)
  t.equal(two.body, 'v1', 'the second request shared the first one\'s computation')
  t.equal(calls, 1, 'one handler run for both')
})

t.test('custom keys: a string or a function of the request', async (t) => {
  const app = await build(t, { redis })
  app.get('/a', { config: { cache: { key: 'shared' } } }, async () => 'from a')
  app.get('/b', { config: { cache: { key: 'shared' } } }, async () => 'from b')
  app.get('/user/:id', { config: { cache: { key: (request) => `user/${(request.params as { id: string }).id}` } } },
    async (request) => `user ${(request.params as { id: string }).id}`)
  await app.inject('/a')
  t.equal((await app.inject('/b')).body, 'from a', 'routes sharing a key share the entry')
  await app.inject('/user/7')
  t.equal(await app.cache.has('user/7'), true)
  t.equal(await app.cache.delete('user/7'), true)
})

t.test('streams are buffered under the cap, and passed through above it', async (t) => {
  const app = await build(t, { redis, cache: { maxBodyBytes: 1_000 } })
  app.get('/small', { config: { cache: true } }, async (_request, reply) => reply.type('text/plain').send(Readable.from([Buffer.from('chunk1-'), 'chunk2'])))
  app.get('/big', { config: { cache: true } }, async (_request, reply) => reply.type('text/plain').send(Readable.from(Array.from({ length: 30 }, () => Buffer.alloc(100, 'x')))))
  app.get('/big-buffer', { config: { cache: true } }, async () => Buffer.alloc(2_000, 'y'))
  t.equal((await app.inject('/small')).body, 'chunk1-chunk2')
  const small = await app.inject('/small')
  t.equal(small.headers['x-cache'], 'HIT')
  t.equal(small.body, 'chunk1-chunk2')
  const big = await app.inject('/big')
  t.equal(big.body, 'x'.repeat(3_000), 'the whole stream still reaches the client')
  t.equal(big.headers['x-cache'], 'BYPASS')
  t.equal((await app.inject('/big')).headers['x-cache'], 'BYPASS', 'nothing over the cap is stored')
  t.equal((await app.inject('/big-buffer')).body.length, 2_000)
  t.equal((await app.inject('/big-buffer')).headers['x-cache'], 'BYPASS')
})

t.test('a web stream is sent as is and never stored', async (t) => {
  const app = await build(t, { redis })
  let calls = 0
  app.get('/web', { config: { cache: true } }, async (_request, reply) => {
    calls++
    const stream = new ReadableStream<Uint8Array>({
      start (controller) {
        controller.enqueue(new TextEncoder().encode('web '))
        controller.enqueue(new TextEncoder().encode(`stream ${calls}`))
        controller.close()
      }
    })
    return reply.type('text/plain').send(stream)
  })
  for (const n of [1, 2]) {
    const response = await app.inject('/web')
    t.equal(response.statusCode, 200)
    t.equal(response.body, `web stream ${n}`, 'the whole stream reaches the client')
    t.equal(response.headers['x-cache'], 'BYPASS')
  }
  t.equal(calls, 2)
  t.same(await app.cache.keys(), [], 'nothing stored')
})

t.test('JSON replies are cached with their content-type', async (t) => {
  const app = await build(t, { redis })
  app.get('/json', { config: { cache: true } }, async () => ({ hello: 'world', n: [1, 2] }))
  await app.inject('/json')
  const hit = await app.inject('/json')
  t.equal(hit.headers['x-cache'], 'HIT')
  t.match(hit.headers['content-type'], /application\/json/)
  t.same(hit.json(), { hello: 'world', n: [1, 2] })
})

t.test('a hit is never stored a second time', async (t) => {
  const app = await build(t, { redis })
  app.get('/once', { config: { cache: { ttl: 60 } } }, async () => 'x')
  await app.inject('/once')
  const key = app.cache.prefix + 'view//once'
  const before = (await client.hgetBuffer(key, ''))!
  await sleep(20)
  for (let i = 0; i < 3; i++) t.equal((await app.inject('/once')).headers['x-cache'], 'HIT')
  const after = (await client.hgetBuffer(key, ''))!
  t.ok(before.equals(after), 'the stored entry (with its createdAt) is unchanged')
  t.equal(app.cache.stats().writes, 1)
})

t.test('corrupt or foreign data under the prefix is a miss, logged, and overwritten', async (t) => {
  const { lines, logger } = logCollector('warn')
  const app = await build(t, { redis, logger })
  app.get('/corrupt', { config: { cache: true } }, async () => 'fresh')
  app.get('/foreign', { config: { cache: true } }, async () => 'fresh too')
  await client.hset(app.cache.prefix + 'view//corrupt', '', Buffer.from('garbage bytes \x00\xff'))
  await client.set(app.cache.prefix + 'view//foreign', 'a string written by another app')
  const corrupt = await app.inject('/corrupt')
  t.equal(corrupt.statusCode, 200)
  t.equal(corrupt.body, 'fresh')
  t.equal(corrupt.headers['x-cache'], 'MISS')
  t.ok(lines.some((line) => JSON.stringify(line).includes('FST_CACHE_CORRUPT_ENTRY')), 'the corrupt entry is logged')
  t.equal((await app.inject('/corrupt')).headers['x-cache'], 'HIT', 'and overwritten')
  t.equal((await app.inject('/foreign')).body, 'fresh too')
  t.equal((await app.inject('/foreign')).headers['x-cache'], 'HIT', 'a foreign value is replaced')
  t.equal(app.cache.stats().errors, 2, 'the corrupt entry and the foreign value are both counted')
})

t.test('paths that differ only in unreserved escapes share a key; encoded slashes do not', async (t) => {
  const app = await build(t, { redis })
  app.get('/post/:id', { config: { cache: true } }, async (request) => `post ${(request.params as { id: string }).id}`)
  t.equal((await app.inject('/post/%32')).headers['x-cache'], 'BYPASS', 'another spelling never writes the page')
  t.equal((await app.inject('/post/2')).headers['x-cache'], 'MISS')
  t.equal((await app.inject('/post/1')).body, 'post 1')
  const escaped = await app.inject('/post/%31')
  t.equal(escaped.headers['x-cache'], 'HIT', 'but may read it')
  t.equal(escaped.body, 'post 1')

  t.equal((await app.inject('/post/a%2Fb')).body, 'post a/b')
  t.equal(await app.cache.delete('view//post/1'), true, 'one delete purges both spellings')
})

t.test('stats count hits, misses and bypasses', async (t) => {
  const app = await build(t, { redis })
  app.get('/s', { config: { cache: { unless: (request) => request.headers['x-skip'] === '1' } } }, async () => 's')
  await app.inject('/s')
  await app.inject('/s')
  await app.inject('/s')
  await app.inject({ url: '/s', headers: { 'x-skip': '1' } })
  const stats = app.cache.stats()
  t.match(stats, { hits: 2, misses: 1, bypasses: 1, stale: 0, errors: 0, breaker: 'closed' })
  t.equal(stats.hitRatio, 2 / 3)
})

t.test('a delete while a response is computed keeps that response out of the cache', async (t) => {
  const app = await build(t, { redis })
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  let calls = 0
  app.get('/race', { config: { cache: true } }, async () => {
    calls++
    if (calls === 1) await gate
    return `version ${calls}`
  })
  const slow = app.inject('/race')
  await sleep(50)
  await app.cache.delete('view//race')
  release()
  t.equal((await slow).body, 'version 1')
  const next = await app.inject('/race')
  t.equal(next.headers['x-cache'], 'MISS', 'the response computed before the purge was not stored')
  t.equal(next.body, 'version 2')
})
