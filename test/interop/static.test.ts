// @fastify/static on a cached route: the file goes out as a stream, which the cache buffers (up to maxBodyBytes) and
// stores; a hit sends the same bytes. A file over maxBodyBytes streams through untouched, every time.
import { createReadStream, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import fastifyStatic from '@fastify/static'
import fastifyCache from '../../plugin/index.js'
import { redisForFile } from '../helpers/redis.js'
import { appOn, cacheOptions, decoded, expectCache, expectNotHit, htmlPage, onEachStore, opaqueBytes, ready } from './helpers.js'

const { redis } = await redisForFile(t)

const root = t.testdir({})
const page = htmlPage('static file', 20_000)
const image = opaqueBytes(3, 6_000)
const large = htmlPage('large static file', 200_000)
writeFileSync(join(root, 'page.html'), page)
writeFileSync(join(root, 'logo.png'), image)
writeFileSync(join(root, 'large.html'), large)

onEachStore(t, redis, '@fastify/static: a streamed file is served the same on miss and hit', async (t, backend) => {
  const app = await appOn(t, backend)
  await app.register(fastifyCache, cacheOptions(backend, { maxBodyBytes: 100_000 }))
  await app.register(fastifyStatic, { root, serve: false })
  let sends = 0
  app.get('/doc', { config: { cache: { ttl: 60 } } }, async (request, reply) => {
    sends++
    return await reply.sendFile('page.html')
  })
  app.get('/logo', { config: { cache: { ttl: 60 } } }, async (request, reply) => await reply.sendFile('logo.png'))
  app.get('/raw', { config: { cache: { ttl: 60 } } }, async (request, reply) =>
    await reply.type('text/html; charset=utf-8').send(createReadStream(join(root, 'page.html'))))
  let largeSends = 0
  app.get('/large', { config: { cache: { ttl: 60 } } }, async (request, reply) => {
    largeSends++
    return await reply.sendFile('large.html')
  })
  await ready(t, app, backend)

  for (const [url, bytes, type] of [['/doc', Buffer.from(page), /^text\/html/], ['/logo', image, /^image\/png/], ['/raw', Buffer.from(page), /^text\/html/]] as const) {
    for (const [index, acceptEncoding] of ['identity', 'identity', 'gzip', 'br'].entries()) {
      const response = await app.inject({ url, headers: { 'accept-encoding': acceptEncoding } })
      const what = `${url}, request ${index + 1} (${acceptEncoding})`
      expectCache(t, response, index === 0 ? 'MISS' : 'HIT', what)
      t.equal(response.statusCode, 200, `${what}: 200`)
      t.match(response.headers['content-type'], type, `${what}: content-type`)
      t.same(decoded(response), bytes, `${what}: the file's bytes`)
    }
  }
  t.equal(sends, 1, 'the file was read once')

  for (const n of [1, 2]) {
    const response = await app.inject('/large')
    expectNotHit(t, response, `/large, request ${n}`)
    t.equal(response.statusCode, 200)
    t.equal(response.body, large, `/large, request ${n}: the whole file, streamed through`)
  }
  t.equal(largeSends, 2, 'a file over maxBodyBytes is read every time')
})
