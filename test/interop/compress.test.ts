// @fastify/compress (global) with the cache, registered before or after it: every client gets bytes it can decode to
// the handler's page, a hit is never compressed a second time, and the page is rendered once.
import t from 'tap'
import fastifyCompress from '@fastify/compress'
import type { FastifyInstance } from 'fastify'
import fastifyCache from '../../plugin/index.js'
import { redisForFile } from '../helpers/redis.js'
import {
  appOn, cacheOptions, decoded, expectCache, htmlPage, onEachStore, ORDERS, ready, varyOf, type Backend, type Order
} from './helpers.js'

const { redis } = await redisForFile(t)

/** The clients in the order of the issue: a gzip client fills the page, then clients without gzip, then br. */
const CLIENTS: Array<[string, Record<string, string>, Array<string | undefined>]> = [
  ['gzip client', { 'accept-encoding': 'gzip' }, ['gzip']],
  ['identity client', { 'accept-encoding': 'identity' }, [undefined, 'identity']],
  ['client without accept-encoding (curl)', {}, [undefined, 'identity']],
  ['br client', { 'accept-encoding': 'br' }, ['br']],
  ['browser', { 'accept-encoding': 'gzip, deflate, br' }, ['br', 'gzip', 'deflate']],
  ['deflate only', { 'accept-encoding': 'deflate' }, ['deflate', undefined, 'identity']],
  ['gzip client again', { 'accept-encoding': 'gzip' }, ['gzip']],
  ['curl again', {}, [undefined, 'identity']]
]

async function appWithCompress (t: Parameters<Parameters<typeof onEachStore>[3]>[0], backend: Backend, order: Order): Promise<FastifyInstance> {
  const app = await appOn(t, backend)
  if (order === 'before') await app.register(fastifyCompress, { global: true })
  await app.register(fastifyCache, cacheOptions(backend))
  if (order === 'after') await app.register(fastifyCompress, { global: true })
  return app
}

for (const order of ORDERS) {
  onEachStore(t, redis, `@fastify/compress registered ${order} the cache: each client decodes the page, a hit is compressed once`, async (t, backend) => {
    const app = await appWithCompress(t, backend, order)
    const page = htmlPage(`compress-${order}`, 16_384)
    const data = { rows: Array.from({ length: 300 }, (_, i) => ({ id: i, label: `row ${i}` })) }
    let renders = 0
    app.get('/page', { config: { cache: { ttl: 60 } } }, async (request, reply) => {
      renders++
      return await reply.type('text/html; charset=utf-8').send(page)
    })
    app.get('/data', { config: { cache: { ttl: 60 } } }, async () => data)
    await ready(t, app, backend)

    for (const [url, expected] of [['/page', page], ['/data', JSON.stringify(data)]] as const) {
      for (const [index, [who, headers, encodings]] of CLIENTS.entries()) {
        const response = await app.inject({ url, headers })
        const what = `${url}, ${who}`
        expectCache(t, response, index === 0 ? 'MISS' : 'HIT', what)
        t.equal(response.statusCode, 200, `${what}: 200`)
        const encoding = response.headers['content-encoding'] as string | undefined
        t.ok(encodings.includes(encoding), `${what}: content-encoding ${String(encoding)} is one it accepts (${encodings.map(String).join(', ')})`)
        // decoded() undoes one layer only: a page compressed twice would not come out as the handler's bytes.
        let body: string | undefined
        try {
          body = decoded(response).toString()
        } catch (err) {
          t.fail(`${what}: the body does not decode as ${String(encoding)}: ${(err as Error).message}`)
        }
        t.equal(body, expected, `${what}: decoded once, the handler's bytes`)
        if (index > 0) t.ok(varyOf(response).includes('accept-encoding'), `${what}: vary names accept-encoding`)
      }
    }
    t.equal(renders, 1, 'the page was rendered once for every client')
  })
}

onEachStore(t, redis, '@fastify/compress: a small page goes out uncompressed, hit or miss', async (t, backend) => {
  const app = await appWithCompress(t, backend, 'after')
  const small = '<p>tiny</p>'
  app.get('/small', { config: { cache: { ttl: 60 } } }, async (request, reply) => await reply.type('text/html').send(small))
  await ready(t, app, backend)
  for (const [index, encoding] of ['gzip', 'br', 'identity'].entries()) {
    const response = await app.inject({ url: '/small', headers: { 'accept-encoding': encoding } })
    expectCache(t, response, index === 0 ? 'MISS' : 'HIT', encoding)
    t.equal(response.headers['content-encoding'], undefined, `${encoding}: no content-encoding`)
    t.equal(response.body, small, `${encoding}: the page`)
  }
})
