import t from 'tap'
import { build } from '../helpers/app.js'
import { redisForFile, variantCount } from '../helpers/redis.js'
import { fits, routeVaryNames, varyNames, varyOnOf, varyVariant } from '../../plugin/response-vary.js'
import type { FastifyRequest } from 'fastify'

const { redis, client } = await redisForFile(t)

const request = (headers: Record<string, string | string[]>): FastifyRequest => ({ headers }) as unknown as FastifyRequest

t.test('Vary names: lowercased, unique, sorted; the cache keys those the route added, never accept-encoding', async (t) => {
  t.same(varyNames(undefined), [])
  t.same(varyNames('Accept-Language, accept-language,,X-Theme'), ['accept-language', 'x-theme'])
  t.same(varyNames(['Origin', 'Accept']), ['accept', 'origin'])
  t.same(routeVaryNames('Origin, Accept-Language, Accept-Encoding', 'Origin'), ['accept-language'])
  t.same(routeVaryNames('Origin', 'Origin'), [])
  const on = varyOnOf(['accept-language', 'x-theme'], request({ 'accept-language': 'fr', 'x-list': ['a', 'b'] }))
  t.same(on, [['accept-language', 'fr'], ['x-theme', null]])
  t.ok(fits(on, request({ 'accept-language': 'fr' })))
  t.notOk(fits(on, request({ 'accept-language': 'fr', 'x-theme': '' })), 'an empty header is not a missing one')
  t.notOk(fits(on, request({ 'accept-language': 'en' })))
  t.ok(fits(undefined, request({})))
  t.ok(fits([['x-list', 'a, b']], request({ 'x-list': ['a', 'b'] })), 'a repeated header is its values joined')
  t.not(varyVariant('', on, request({ 'accept-language': 'fr' })), varyVariant('', on, request({ 'accept-language': 'en' })))
  t.not(varyVariant('', on, request({ 'x-theme': '' })), varyVariant('', on, request({})))
})

for (const backend of ['redis', 'memory'] as const) {
  const options = (prefix: string) => ({ redis: backend === 'redis' ? redis : undefined, cache: backend === 'redis' ? { prefix: `${redis.prefix}${prefix}` } : {} })

  t.test(`${backend}: a handler's own Vary selects the variant, with no route option`, async (t) => {
    const app = await build(t, options('vary-lang:'))
    let runs = 0
    app.get('/greet', { config: { cache: { ttl: 60 } } }, async (request, reply) => {
      runs++
      reply.header('vary', 'Accept-Language')
      return String(request.headers['accept-language']).startsWith('fr') ? 'Bonjour' : 'Hello'
    })
    const get = async (lang?: string) => await app.inject({ url: '/greet', headers: lang === undefined ? {} : { 'accept-language': lang } })
    const fr = await get('fr')
    t.equal(fr.body, 'Bonjour')
    t.equal(fr.headers['x-cache'], 'MISS')
    t.match(fr.headers['cache-status'], /fwd=uri-miss; stored/)
    const en = await get('en')
    t.equal(en.body, 'Hello', 'the English reader is not served the French page')
    t.equal(en.headers['x-cache'], 'MISS')
    t.match(en.headers['cache-status'], /fwd=vary-miss; stored/, 'a miss of another variant of a stored URI')
    const none = await get()
    t.equal(none.body, 'Hello')
    t.equal(none.headers['x-cache'], 'MISS', 'no header is a variant of its own')
    for (const [lang, body] of [['fr', 'Bonjour'], ['en', 'Hello'], [undefined, 'Hello'], ['fr', 'Bonjour']] as const) {
      const hit = await get(lang)
      t.equal(hit.headers['x-cache'], 'HIT', `${String(lang)}: HIT`)
      t.equal(hit.body, body, `${String(lang)}: its own page`)
      t.equal(hit.headers.vary, 'accept-language', 'the stored Vary goes out')
    }
    t.equal(runs, 3)
    if (backend === 'redis') t.equal(await variantCount(client, `${redis.prefix}vary-lang:view//greet`), 3)
  })

  t.test(`${backend}: Vary on *, cookie or authorization is never stored; too many names neither`, async (t) => {
    const app = await build(t, options('vary-never:'))
    const names: Record<string, string> = {
      star: '*',
      cookie: 'Cookie',
      auth: 'Accept, Authorization',
      many: Array.from({ length: 17 }, (_, i) => `x-h${i}`).join(', ')
    }
    for (const [path, vary] of Object.entries(names)) {
      app.get(`/${path}`, { config: { cache: { ttl: 60 } } }, async (_request, reply) => reply.header('vary', vary).send(path))
    }
    for (const path of Object.keys(names)) {
      await app.inject(`/${path}`)
      const again = await app.inject(`/${path}`)
      t.equal(again.headers['x-cache'], 'BYPASS', `vary ${names[path]}: not stored`)
      t.equal(again.body, path)
    }
  })
}

t.test('two instances: a variant stored by one is found by the other, from L1 too; a purge drops every variant', async (t) => {
  const prefix = `${redis.prefix}vary-l1:`
  const apps = await Promise.all([0, 1].map(async () => await build(t, { redis, cache: { prefix, l1: true } })))
  let runs = 0
  for (const app of apps) {
    app.get('/t', { config: { cache: { ttl: 60 } } }, async (request, reply) => {
      runs++
      reply.header('vary', 'x-theme')
      return `theme ${String(request.headers['x-theme'])}`
    })
  }
  const [a, b] = apps as [typeof apps[0], typeof apps[0]]
  await a.inject({ url: '/t', headers: { 'x-theme': 'dark' } })
  await a.inject({ url: '/t', headers: { 'x-theme': 'light' } })
  for (let i = 0; i < 2; i++) {
    for (const theme of ['dark', 'light']) {
      const response = await b.inject({ url: '/t', headers: { 'x-theme': theme } })
      t.equal(response.body, `theme ${theme}`)
      t.equal(response.headers['x-cache'], 'HIT')
    }
  }
  t.equal(runs, 2)
  t.ok(b.cache.stats().l1Hits >= 2, 'the second round came from L1, through the base variant to its own')
  await b.cache.delete('view//t')
  t.equal((await b.inject({ url: '/t', headers: { 'x-theme': 'light' } })).headers['x-cache'], 'MISS')
})

t.test('concurrent requests with different values: each gets its own page; the same values collapse', async (t) => {
  const app = await build(t, { redis, cache: { prefix: `${redis.prefix}vary-flight:` } })
  let release: () => void = () => {}
  const gate = new Promise<void>((resolve) => { release = resolve })
  let runs = 0
  let entered: () => void = () => {}
  const inHandler = new Promise<void>((resolve) => { entered = resolve })
  app.get('/slow', { config: { cache: { ttl: 60 } } }, async (request, reply) => {
    runs++
    entered()
    await gate
    reply.header('vary', 'accept-language')
    return `lang ${String(request.headers['accept-language'])}`
  })
  const sent = [
    app.inject({ url: '/slow', headers: { 'accept-language': 'fr' } }),
    app.inject({ url: '/slow', headers: { 'accept-language': 'fr' } }),
    app.inject({ url: '/slow', headers: { 'accept-language': 'en' } })
  ]
  // The leader is in its handler (the others wait on it, or find its page when it is stored: either way, French).
  await inHandler
  release()
  const [fr1, fr2, en] = await Promise.all(sent)
  t.equal(fr1?.body, 'lang fr')
  t.equal(fr2?.body, 'lang fr')
  t.equal(en?.body, 'lang en', 'not the leader\'s French page')
  t.equal(runs, 2, 'the second French request collapsed on the first; the English one computed its own')
})

t.test('a variant whose response came to vary on more headers: a request it does not fit computes its own', async (t) => {
  const app = await build(t, { redis, cache: { prefix: `${redis.prefix}vary-more:` } })
  let runs = 0
  app.get('/v', { config: { cache: { ttl: 60 } } }, async (request, reply) => {
    runs++
    // For x-a: b, the page also depends on x-b.
    reply.header('vary', request.headers['x-a'] === 'b' ? 'x-a, x-b' : 'x-a')
    return `a=${String(request.headers['x-a'])} b=${String(request.headers['x-b'])}`
  })
  const get = async (headers: Record<string, string>) => await app.inject({ url: '/v', headers })
  t.equal((await get({ 'x-a': 'a' })).headers['x-cache'], 'MISS')
  t.equal((await get({ 'x-a': 'b', 'x-b': '1' })).body, 'a=b b=1')
  const other = await get({ 'x-a': 'b', 'x-b': '2' })
  t.equal(other.body, 'a=b b=2', 'not the x-b: 1 page found in its variant')
  t.equal(other.headers['x-cache'], 'MISS')
  t.match(other.headers['cache-status'], /fwd=vary-miss/)
  t.equal(runs, 3)
  const again = await get({ 'x-a': 'b', 'x-b': '2' })
  t.equal(again.headers['x-cache'], 'HIT')
  t.equal(again.body, 'a=b b=2')
})
