// @fastify/etag with the cache, before or after it: a hit's etag is the etag of the representation it sends (the
// same bytes keep the same tag; each encoding has its own), and If-None-Match with it is a 304.
import t from 'tap'
import fastifyEtag from '@fastify/etag'
import fastifyCache from '../../plugin/index.js'
import { redisForFile } from '../helpers/redis.js'
import { appOn, cacheOptions, decoded, expectCache, htmlPage, onEachStore, ORDERS, ready } from './helpers.js'

const { redis } = await redisForFile(t)

for (const order of ORDERS) {
  onEachStore(t, redis, `@fastify/etag registered ${order} the cache: a hit's etag is its representation's, and revalidates`, async (t, backend) => {
    const app = await appOn(t, backend)
    if (order === 'before') await app.register(fastifyEtag)
    await app.register(fastifyCache, cacheOptions(backend))
    if (order === 'after') await app.register(fastifyEtag)
    const page = htmlPage(`etag-${order}`, 8_192)
    let renders = 0
    app.get('/small', { config: { cache: { ttl: 60 } } }, async () => `small page ${++renders}`)
    app.get('/page', { config: { cache: { ttl: 60 } } }, async (request, reply) => await reply.type('text/html').send(page))
    await ready(t, app, backend)

    // A small page: one representation.
    const miss = await app.inject('/small')
    expectCache(t, miss, 'MISS', 'small, first')
    const etag = miss.headers.etag as string
    t.match(etag, /^(W\/)?"[^"]+"$/, 'the miss has an etag')
    for (const n of [2, 3]) {
      const hit = await app.inject('/small')
      expectCache(t, hit, 'HIT', `small, request ${n}`)
      t.equal(hit.headers.etag, etag, `small, request ${n}: the same bytes, the same etag`)
      t.equal(hit.body, 'small page 1')
    }
    const notModified = await app.inject({ url: '/small', headers: { 'if-none-match': etag } })
    t.equal(notModified.statusCode, 304, 'If-None-Match with the etag: 304')
    t.equal(notModified.body, '', 'a 304 has no body')
    t.equal(notModified.headers.etag, etag, 'a 304 names the etag')
    const other = await app.inject({ url: '/small', headers: { 'if-none-match': '"something-else"' } })
    t.equal(other.statusCode, 200, 'another etag: the page')
    t.equal(other.body, 'small page 1')
    t.equal(renders, 1, 'rendered once')

    // A large page: an etag per encoding, each revalidating only its own representation.
    expectCache(t, await app.inject('/page'), 'MISS', 'page, first')
    const tags = new Map<string, string>()
    for (const encoding of ['identity', 'gzip', 'br']) {
      const response = await app.inject({ url: '/page', headers: { 'accept-encoding': encoding } })
      expectCache(t, response, 'HIT', `page, ${encoding}`)
      t.equal(decoded(response).toString(), page, `page, ${encoding}: decodes to the page`)
      tags.set(encoding, response.headers.etag as string)
      const again = await app.inject({ url: '/page', headers: { 'accept-encoding': encoding, 'if-none-match': response.headers.etag as string } })
      t.equal(again.statusCode, 304, `page, ${encoding}: its etag revalidates`)
    }
    t.equal(new Set(tags.values()).size, 3, 'three representations, three etags')
    const crossed = await app.inject({ url: '/page', headers: { 'accept-encoding': 'br', 'if-none-match': tags.get('identity')! } })
    t.equal(crossed.statusCode, 200, 'a br client holding the identity etag gets the br page, not a 304')
    t.equal(decoded(crossed).toString(), page, 'decoding to the page')
  })
}
