import t from 'tap'
import { brotliDecompressSync, gunzipSync } from 'node:zlib'
import { redisForFile } from '../helpers/redis.js'
import { buildBlog } from './fixtures/blog.js'

const { redis } = await redisForFile(t)

t.test('the blog registers @fastify/compress: pages come from the cache compressed, never twice', async (t) => {
  const app = await buildBlog(t, redis)
  const miss = await app.inject({ url: '/', headers: { 'accept-encoding': 'gzip' } })
  t.equal(miss.headers['x-cache'], 'MISS')
  t.equal(miss.headers['content-encoding'], 'gzip', 'compress encodes the first response for its client')
  const page = gunzipSync(miss.rawPayload).toString()
  t.match(page, /<html/)
  const br = await app.inject({ url: '/', headers: { 'accept-encoding': 'br' } })
  t.equal(br.headers['x-cache'], 'HIT')
  t.equal(br.headers['content-encoding'], 'br')
  t.equal(brotliDecompressSync(br.rawPayload).toString(), page, 'decoded once, it is the page')
  const plain = await app.inject('/')
  t.equal(plain.headers['x-cache'], 'HIT')
  t.equal(plain.headers['content-encoding'], undefined)
  t.equal(plain.body, page)
  t.match(String(plain.headers.vary), /accept-encoding/)
  const admin = await app.inject({ url: '/login', headers: { 'accept-encoding': 'gzip' } })
  t.equal(admin.statusCode, 200)
  t.equal(admin.headers['content-encoding'], 'gzip', 'an uncached page is compressed by @fastify/compress')
})
