// Encodings without @fastify/compress: a compressible page over 1 KiB is stored pre-compressed (br and gzip) and each
// hit goes out in the encoding its client accepts, with `vary: accept-encoding` and an etag per representation.
// Pages under the threshold, and types that are compressed already, go out as stored.
import t from 'tap'
import fastifyCache from '../../plugin/index.js'
import { redisForFile } from '../helpers/redis.js'
import {
  appOn, cacheOptions, decoded, expectCache, htmlPage, onEachStore, opaqueBytes, ready, varyOf
} from './helpers.js'

const { redis } = await redisForFile(t)

/** Accept-Encoding as clients send it, and the encoding each must get on a hit (undefined: identity). */
const CLIENTS: Array<[string, string | undefined, 'br' | 'gzip' | undefined]> = [
  ['br', 'br', 'br'],
  ['gzip', 'gzip', 'gzip'],
  ['gzip preferred by q', 'gzip;q=1, br;q=0.5', 'gzip'],
  ['br refused', 'br;q=0, gzip', 'gzip'],
  ['identity', 'identity', undefined],
  ['no header', undefined, undefined],
  ['everything refused but identity', '*;q=0, identity', undefined],
  ['br again', 'br', 'br'],
  ['gzip again', 'gzip', 'gzip'],
  ['identity again', undefined, undefined]
]

onEachStore(t, redis, 'a compressible page over 1 KiB: each client gets its encoding on a hit, decoding to the handler\'s bytes', async (t, backend) => {
  const app = await appOn(t, backend)
  await app.register(fastifyCache, cacheOptions(backend))
  const page = htmlPage('encodings', 16_384)
  const data = { items: Array.from({ length: 200 }, (_, i) => ({ id: i, name: `item ${i}`, tags: ['a', 'b'] })) }
  let renders = 0
  app.get('/page', { config: { cache: { ttl: 60 } } }, async (request, reply) => {
    renders++
    return await reply.type('text/html; charset=utf-8').send(page)
  })
  app.get('/data', { config: { cache: { ttl: 60 } } }, async () => data)
  await ready(t, app, backend)

  // The first client (a browser) fills the page; whatever it gets, it must be able to read it.
  const first = await app.inject({ url: '/page', headers: { 'accept-encoding': 'gzip, deflate, br' } })
  expectCache(t, first, 'MISS', 'browser, cold')
  t.equal(first.statusCode, 200)
  t.ok([undefined, 'br', 'gzip'].includes(first.headers['content-encoding'] as string | undefined), 'the miss is in an encoding the browser takes')
  t.equal(decoded(first).toString(), page, 'the miss decodes to the page')

  const etags = new Map<string | undefined, string>()
  for (const [who, acceptEncoding, encoding] of CLIENTS) {
    const response = await app.inject({ url: '/page', headers: acceptEncoding === undefined ? {} : { 'accept-encoding': acceptEncoding } })
    expectCache(t, response, 'HIT', who)
    t.equal(response.statusCode, 200, `${who}: 200`)
    t.equal(response.headers['content-encoding'], encoding, `${who}: content-encoding ${encoding ?? 'absent'}`)
    t.ok(varyOf(response).includes('accept-encoding'), `${who}: vary names accept-encoding`)
    t.equal(response.headers['content-type'], 'text/html; charset=utf-8', `${who}: the stored content-type`)
    t.equal(decoded(response).toString(), page, `${who}: decoded once, the handler's bytes`)
    if (encoding !== undefined) t.ok(response.rawPayload.length < page.length / 2, `${who}: sent compressed (${response.rawPayload.length} bytes)`)
    const etag = response.headers.etag as string | undefined
    t.type(etag, 'string', `${who}: an etag`)
    if (etag === undefined) continue
    const known = etags.get(encoding)
    if (known === undefined) etags.set(encoding, etag)
    else t.equal(etag, known, `${who}: the same representation keeps its etag`)
  }
  t.equal(new Set(etags.values()).size, 3, 'br, gzip and identity have three distinct etags')
  t.equal(renders, 1, 'rendered once, served in three encodings')

  for (const [who, acceptEncoding, encoding] of [['br', 'br', 'br'], ['gzip', 'gzip', 'gzip'], ['identity', 'identity', undefined]] as const) {
    const etag = etags.get(encoding)
    if (etag === undefined) continue
    const revalidated = await app.inject({ url: '/page', headers: { 'accept-encoding': acceptEncoding, 'if-none-match': etag } })
    t.equal(revalidated.statusCode, 304, `${who}: If-None-Match with its representation's etag is 304`)
    t.equal(revalidated.rawPayload.length, 0, `${who}: a 304 has no body`)
  }
  const crossed = await app.inject({ url: '/page', headers: { 'accept-encoding': 'br', 'if-none-match': etags.get('gzip') ?? '"none"' } })
  t.equal(crossed.statusCode, 200, "a br client holding the gzip representation's etag is sent the br one")
  t.equal(crossed.headers['content-encoding'], 'br', 'the br representation')
  t.equal(decoded(crossed).toString(), page, 'decoding to the page')

  // JSON is compressible too.
  const json = JSON.stringify(data)
  await app.inject('/data')
  for (const [acceptEncoding, encoding] of [['br', 'br'], ['gzip', 'gzip'], ['identity', undefined]] as const) {
    const response = await app.inject({ url: '/data', headers: { 'accept-encoding': acceptEncoding } })
    expectCache(t, response, 'HIT', `json, ${acceptEncoding}`)
    t.equal(response.headers['content-encoding'], encoding, `json, ${acceptEncoding}: content-encoding ${encoding ?? 'absent'}`)
    t.match(response.headers['content-type'], /^application\/json/)
    t.equal(decoded(response).toString(), json, `json, ${acceptEncoding}: the handler's JSON`)
  }
})

onEachStore(t, redis, 'a small page, and types that are compressed already, go out as stored', async (t, backend) => {
  const app = await appOn(t, backend)
  await app.register(fastifyCache, cacheOptions(backend))
  const small = '<!doctype html><p>small page, well under the threshold</p>\n'
  const png = opaqueBytes(7)
  const zip = opaqueBytes(11)
  app.get('/small', { config: { cache: { ttl: 60 } } }, async (request, reply) => await reply.type('text/html').send(small))
  app.get('/image', { config: { cache: { ttl: 60 } } }, async (request, reply) => await reply.type('image/png').send(png))
  app.get('/archive', { config: { cache: { ttl: 60 } } }, async (request, reply) => await reply.type('application/zip').send(zip))
  await ready(t, app, backend)

  for (const [url, bytes, type] of [['/small', Buffer.from(small), 'text/html'], ['/image', png, 'image/png'], ['/archive', zip, 'application/zip']] as const) {
    expectCache(t, await app.inject({ url, headers: { 'accept-encoding': 'br, gzip' } }), 'MISS', `${url} cold`)
    for (const acceptEncoding of ['br', 'gzip', 'br, gzip', 'identity']) {
      const response = await app.inject({ url, headers: { 'accept-encoding': acceptEncoding } })
      const who = `${url}, ${acceptEncoding}`
      expectCache(t, response, 'HIT', who)
      t.equal(response.headers['content-encoding'], undefined, `${who}: no content-encoding`)
      t.match(response.headers['content-type'], type, `${who}: ${type}`)
      t.same(response.rawPayload, bytes, `${who}: the stored bytes`)
    }
  }
})

onEachStore(t, redis, 'curl -sI on a cold page shows BYPASS until a GET fills it: HEAD never writes', async (t, backend) => {
  const app = await appOn(t, backend)
  await app.register(fastifyCache, cacheOptions(backend))
  let renders = 0
  const page = htmlPage('head', 4_096)
  app.get('/cold', { config: { cache: { ttl: 60 } } }, async (request, reply) => {
    renders++
    return await reply.type('text/html').send(page)
  })
  await ready(t, app, backend)

  for (const attempt of [1, 2]) {
    const head = await app.inject({ method: 'HEAD', url: '/cold' })
    t.equal(head.statusCode, 200)
    expectCache(t, head, 'BYPASS', `HEAD ${attempt} on a cold page`)
    t.equal(head.rawPayload.length, 0, 'HEAD has no body')
  }
  expectCache(t, await app.inject('/cold'), 'MISS', 'the first GET')
  const head = await app.inject({ method: 'HEAD', url: '/cold', headers: { 'accept-encoding': 'gzip' } })
  expectCache(t, head, 'HIT', 'HEAD once the GET filled it')
  t.equal(head.rawPayload.length, 0, 'HEAD has no body')
  t.equal(head.headers['content-encoding'], 'gzip', 'HEAD names the encoding a GET would get')
  t.equal(renders, 3, 'the two cold HEADs ran the handler, the hit did not')
})
