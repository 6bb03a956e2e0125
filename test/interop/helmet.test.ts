// @fastify/helmet: its headers are set for each request before the cache looks, so a hit carries them. With CSP
// nonces, the stored page keeps the nonces it was rendered with, so the stored content-security-policy goes out with
// it: the header's nonces and the page's always match, on a miss and on a hit.
import t from 'tap'
import fastifyHelmet from '@fastify/helmet'
import fastifyCache from '../../plugin/index.js'
import { redisForFile } from '../helpers/redis.js'
import { appOn, cacheOptions, expectCache, onEachStore, ORDERS, ready } from './helpers.js'

const { redis } = await redisForFile(t)

/** The nonces a CSP allows in one directive. */
function noncesOf (csp: unknown, directive: string): string[] {
  const found = String(csp).split(';').map((part) => part.trim()).find((part) => part.startsWith(directive + ' '))
  return [...(found ?? '').matchAll(/'nonce-([^']+)'/g)].map((match) => match[1]!)
}

for (const order of ORDERS) {
  onEachStore(t, redis, `@fastify/helmet with CSP nonces, registered ${order} the cache: the header matches the page`, async (t, backend) => {
    const app = await appOn(t, backend)
    const helmet = { enableCSPNonces: true }
    if (order === 'before') await app.register(fastifyHelmet, helmet)
    await app.register(fastifyCache, cacheOptions(backend))
    if (order === 'after') await app.register(fastifyHelmet, helmet)
    let renders = 0
    app.get('/page', { config: { cache: { ttl: 60 } } }, async (request, reply) => {
      renders++
      const { script, style } = reply.cspNonce
      return await reply.type('text/html; charset=utf-8')
        .send(`<!doctype html><style nonce="${style}">p{}</style><p>page</p><script nonce="${script}">run()</script>`)
    })
    await ready(t, app, backend)

    const seenScriptNonces = new Set<string>()
    for (const [index, label] of (['MISS', 'HIT', 'HIT', 'HIT'] as const).entries()) {
      const response = await app.inject('/page')
      const what = `request ${index + 1}`
      expectCache(t, response, label, what)
      const csp = response.headers['content-security-policy']
      t.type(csp, 'string', `${what}: a content-security-policy`)
      const pageScript = /<script nonce="([^"]+)"/.exec(response.body)?.[1]
      const pageStyle = /<style nonce="([^"]+)"/.exec(response.body)?.[1]
      t.ok(pageScript !== undefined && noncesOf(csp, 'script-src').includes(pageScript),
        `${what}: the page's script nonce is one the header allows`)
      t.ok(pageStyle !== undefined && noncesOf(csp, 'style-src').includes(pageStyle),
        `${what}: the page's style nonce is one the header allows`)
      if (pageScript !== undefined) seenScriptNonces.add(pageScript)
      // helmet's other headers are this request's, hit or miss.
      t.equal(response.headers['x-content-type-options'], 'nosniff', `${what}: x-content-type-options`)
      t.equal(response.headers['x-frame-options'], 'SAMEORIGIN', `${what}: x-frame-options`)
      t.match(response.headers['strict-transport-security'], /max-age=\d+/, `${what}: strict-transport-security`)
      t.equal(response.headers['cross-origin-opener-policy'], 'same-origin', `${what}: cross-origin-opener-policy`)
    }
    t.equal(seenScriptNonces.size, 1, 'every hit is the stored page, with its nonce')
    t.equal(renders, 1, 'rendered once')
  })
}

onEachStore(t, redis, '@fastify/helmet without nonces: a hit carries the same security headers as a miss', async (t, backend) => {
  const app = await appOn(t, backend)
  await app.register(fastifyHelmet)
  await app.register(fastifyCache, cacheOptions(backend))
  app.get('/page', { config: { cache: { ttl: 60 } } }, async () => 'page')
  await ready(t, app, backend)
  const miss = await app.inject('/page')
  expectCache(t, miss, 'MISS', 'first')
  const hit = await app.inject('/page')
  expectCache(t, hit, 'HIT', 'second')
  for (const name of ['content-security-policy', 'x-content-type-options', 'x-frame-options', 'strict-transport-security',
    'referrer-policy', 'cross-origin-resource-policy', 'x-dns-prefetch-control']) {
    t.type(miss.headers[name], 'string', `${name} on the miss`)
    t.equal(hit.headers[name], miss.headers[name], `${name}: the same on the hit`)
  }
})
