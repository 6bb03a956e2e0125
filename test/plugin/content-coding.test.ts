import t from 'tap'
import { brotliDecompressSync, deflateSync, gunzipSync, gzipSync } from 'node:zlib'
import { build } from '../helpers/app.js'
import { redisForFile } from '../helpers/redis.js'
import { decodePage, encodePage } from '../../plugin/entry.js'

const { redis, client } = await redisForFile(t)
const page = '<!doctype html><title>x</title>' + '<p>Lorem ipsum dolor sit amet, consectetur.</p>\n'.repeat(200)

t.test('a compressible page is stored as br and gzip, and each client gets the coding it accepts', async (t) => {
  const prefix = `${redis.prefix}coding:`
  const app = await build(t, { redis, cache: { prefix } })
  let runs = 0
  app.get('/page', { config: { cache: { ttl: 60 } } }, async (_request, reply) => { runs++; return reply.type('text/html').send(page) })
  const miss = await app.inject({ url: '/page', headers: { 'accept-encoding': 'gzip' } })
  t.equal(miss.headers['x-cache'], 'MISS')
  t.equal(miss.headers['content-encoding'], undefined, 'the miss goes out as the handler made it')
  t.equal(miss.body, page)
  t.equal(miss.headers.vary, 'accept-encoding', 'and says the page has codings from now on')
  const stored = decodePage(await client.hgetBuffer(`${prefix}view//page`, '') as Buffer)
  t.ok(stored.encoded?.br !== undefined && stored.encoded.br.length + stored.encoded.gzip.length <= page.length / 2,
    'stored compressed, in under half the identity size')

  const br = await app.inject({ url: '/page', headers: { 'accept-encoding': 'gzip, deflate, br' } })
  t.equal(br.headers['x-cache'], 'HIT')
  t.equal(br.headers['content-encoding'], 'br')
  t.equal(brotliDecompressSync(br.rawPayload).toString(), page)
  t.equal(br.headers['content-length'], String(br.rawPayload.length))
  const gzip = await app.inject({ url: '/page', headers: { 'accept-encoding': 'gzip;q=1, br;q=0.5' } })
  t.equal(gzip.headers['content-encoding'], 'gzip')
  t.equal(gunzipSync(gzip.rawPayload).toString(), page)
  const identity = await app.inject({ url: '/page', headers: { 'accept-encoding': 'identity' } })
  t.equal(identity.headers['content-encoding'], undefined)
  t.equal(identity.body, page)
  for (const response of [br, gzip, identity]) t.equal(response.headers.vary, 'accept-encoding')
  const etags = new Set([miss, br, gzip, identity].map((r) => r.headers.etag))
  t.equal(etags.size, 3, 'identity, br and gzip each have their own etag')
  t.equal(miss.headers.etag, identity.headers.etag)

  const notModified = await app.inject({ url: '/page', headers: { 'accept-encoding': 'br', 'if-none-match': br.headers.etag as string } })
  t.equal(notModified.statusCode, 304)
  t.equal(notModified.headers['content-encoding'], 'br')
  const otherCoding = await app.inject({ url: '/page', headers: { 'accept-encoding': 'gzip', 'if-none-match': br.headers.etag as string } })
  t.equal(otherCoding.statusCode, 200, 'the br validator does not match the gzip representation')
  const head = await app.inject({ method: 'HEAD', url: '/page', headers: { 'accept-encoding': 'br' } })
  t.equal(head.headers['content-encoding'], 'br')
  t.equal(head.body, '')
  t.equal(runs, 1)
})

t.test('small pages, incompressible types and compressAbove: false are stored as sent', async (t) => {
  const prefix = `${redis.prefix}coding-as-is:`
  const app = await build(t, { redis, cache: { prefix } })
  const png = Buffer.alloc(4096, 7)
  app.get('/small', { config: { cache: true } }, async (_request, reply) => reply.type('text/html').send('<p>small</p>'))
  app.get('/png', { config: { cache: true } }, async (_request, reply) => reply.type('image/png').send(png))
  for (const url of ['/small', '/png']) {
    await app.inject(url)
    const hit = await app.inject({ url, headers: { 'accept-encoding': 'br, gzip' } })
    t.equal(hit.headers['x-cache'], 'HIT')
    t.equal(hit.headers['content-encoding'], undefined, `${url}: no coding`)
    t.equal(hit.headers.vary, undefined, `${url}: no Vary`)
  }
  const off = await build(t, { redis, cache: { prefix: `${prefix}off:`, compressAbove: false } })
  off.get('/page', { config: { cache: true } }, async (_request, reply) => reply.type('text/html').send(page))
  await off.inject('/page')
  const hit = await off.inject({ url: '/page', headers: { 'accept-encoding': 'br' } })
  t.equal(hit.headers['content-encoding'], undefined)
  t.equal(hit.body, page)
})

t.test('a body the handler compressed is stored as its identity bytes; an unknown coding is not stored', async (t) => {
  const app = await build(t, { redis, cache: { prefix: `${redis.prefix}coding-handler:`, maxBodyBytes: 20_000 } })
  const codings: Record<string, (body: Buffer) => Buffer> = { gzip: gzipSync, deflate: deflateSync }
  for (const [coding, encode] of Object.entries(codings)) {
    app.get(`/${coding}`, { config: { cache: true } }, async (_request, reply) =>
      reply.type('text/html').header('content-encoding', coding).send(encode(Buffer.from(page))))
  }
  app.get('/zstd', { config: { cache: true } }, async (_request, reply) =>
    reply.type('text/html').header('content-encoding', 'zstd').send(Buffer.from('not really zstd')))
  app.get('/bomb', { config: { cache: true } }, async (_request, reply) =>
    reply.type('text/html').header('content-encoding', 'gzip').send(gzipSync(Buffer.alloc(50_000, 32))))
  for (const coding of Object.keys(codings)) {
    const miss = await app.inject(`/${coding}`)
    t.equal(miss.headers['content-encoding'], coding, 'the first client gets what the handler sent')
    t.equal(miss.headers['x-cache'], 'MISS')
    const identity = await app.inject(`/${coding}`)
    t.equal(identity.headers['x-cache'], 'HIT')
    t.equal(identity.body, page, `${coding}: a client without codings gets the page`)
    const br = await app.inject({ url: `/${coding}`, headers: { 'accept-encoding': 'br' } })
    t.equal(brotliDecompressSync(br.rawPayload).toString(), page)
  }
  for (const url of ['/zstd', '/bomb']) {
    await app.inject(url)
    t.equal((await app.inject(url)).headers['x-cache'], 'BYPASS', `${url}: not stored`)
  }
})

t.test('a compressed body planted in the store that does not decode: an error for that client, not garbage', async (t) => {
  const prefix = `${redis.prefix}coding-planted:`
  const app = await build(t, { redis, cache: { prefix } })
  app.get('/page', { config: { cache: true } }, async (_request, reply) => reply.type('text/html').send(page))
  await app.inject('/page')
  const key = `${prefix}view//page`
  const stored = decodePage(await client.hgetBuffer(key, '') as Buffer)
  const planted = encodePage({ ...stored, encoded: { br: Buffer.from('not br'), gzip: Buffer.from('not gzip') } })
  await client.hset(key, '', planted)
  const identity = await app.inject('/page')
  t.equal(identity.statusCode, 500)
  t.notMatch(identity.body, 'not gzip')
  const br = await app.inject({ url: '/page', headers: { 'accept-encoding': 'br' } })
  t.equal(br.body, 'not br', 'a coding the client decodes itself is sent as stored (the client rejects it)')
})

t.test('a page stored compressed keeps its stale window: served within grace, in the client\'s coding', async (t) => {
  const realNow = Date.now
  let now = realNow()
  Date.now = () => now
  t.teardown(() => { Date.now = realNow })
  const app = await build(t, { redis, cache: { prefix: `${redis.prefix}coding-grace:` } })
  let fail = false
  app.get('/page', { config: { cache: { ttl: 1, grace: 60 } } }, async (_request, reply) =>
    fail ? await reply.code(503).send('down') : await reply.type('text/html').send(page))
  await app.inject('/page')
  now += 5_000
  fail = true
  const grace = await app.inject({ url: '/page', headers: { 'accept-encoding': 'gzip' } })
  t.equal(grace.statusCode, 200)
  t.equal(grace.headers['x-cache'], 'STALE')
  t.equal(grace.headers['content-encoding'], 'gzip')
  t.equal(gunzipSync(grace.rawPayload).toString(), page)
})
