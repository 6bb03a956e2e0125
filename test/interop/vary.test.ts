// RFC 9111 §4.1: the response's own Vary selects the variant, with no route option. `Vary: *` is never stored, nor a
// Vary on cookie or authorization.
import t from 'tap'
import fastifyCache from '../../plugin/index.js'
import { redisForFile } from '../helpers/redis.js'
import { appOn, cacheOptions, expectCache, expectNotHit, onEachStore, ready, varyOf } from './helpers.js'

const { redis } = await redisForFile(t)

const FRENCH = 'Bonjour, voici la page.'
const ENGLISH = 'Hello, here is the page.'

onEachStore(t, redis, "a handler's Vary: Accept-Language: French readers get French, English readers English, on miss and hit", async (t, backend) => {
  const app = await appOn(t, backend)
  await app.register(fastifyCache, cacheOptions(backend))
  const renders: string[] = []
  app.get('/welcome', { config: { cache: { ttl: 60 } } }, async (request, reply) => {
    const french = /^fr\b/i.test(request.headers['accept-language'] ?? '')
    renders.push(french ? 'fr' : 'en')
    reply.header('vary', 'Accept-Language')
    reply.header('content-language', french ? 'fr' : 'en')
    return french ? FRENCH : ENGLISH
  })
  await ready(t, app, backend)

  const SEQUENCE: Array<[string, string | undefined, 'HIT' | 'MISS', string, string]> = [
    ['English reader, cold', 'en', 'MISS', ENGLISH, 'en'],
    ['French reader, first', 'fr', 'MISS', FRENCH, 'fr'],
    ['English reader again', 'en', 'HIT', ENGLISH, 'en'],
    ['French reader again', 'fr', 'HIT', FRENCH, 'fr'],
    ['French reader a third time', 'fr', 'HIT', FRENCH, 'fr'],
    ['English reader a third time', 'en', 'HIT', ENGLISH, 'en']
  ]
  for (const [who, language, label, body, contentLanguage] of SEQUENCE) {
    const response = await app.inject({ url: '/welcome', headers: language === undefined ? {} : { 'accept-language': language } })
    expectCache(t, response, label, who)
    t.equal(response.statusCode, 200, `${who}: 200`)
    t.equal(response.body, body, `${who}: ${contentLanguage === 'fr' ? 'French' : 'English'}`)
    t.equal(response.headers['content-language'], contentLanguage, `${who}: content-language ${contentLanguage}`)
    t.ok(varyOf(response).includes('accept-language'), `${who}: vary names accept-language`)
  }
  t.same(renders, ['en', 'fr'], 'each language rendered once')

  // A client that sends no Accept-Language is a variant of its own (RFC 9111 §4.1: an absent header matches only an
  // absent header): the handler renders it once.
  const none = await app.inject('/welcome')
  expectCache(t, none, 'MISS', 'no accept-language, first')
  t.equal(none.body, ENGLISH, 'no accept-language: the English default')
  const noneAgain = await app.inject('/welcome')
  expectCache(t, noneAgain, 'HIT', 'no accept-language, again')
  t.equal(noneAgain.body, ENGLISH, 'no accept-language, again: English')
  t.same(renders, ['en', 'fr', 'en'], 'three variants, each rendered once')
})

onEachStore(t, redis, "a Vary the handler sets with the route's own vary option: both select the variant", async (t, backend) => {
  const app = await appOn(t, backend)
  await app.register(fastifyCache, cacheOptions(backend))
  let renders = 0
  app.get('/both', { config: { cache: { ttl: 60, vary: ['x-theme'] } } }, async (request, reply) => {
    renders++
    reply.header('vary', 'Accept-Language')
    return `${String(request.headers['x-theme'])}/${String(request.headers['accept-language'])}`
  })
  await ready(t, app, backend)
  const clients = [['dark', 'fr'], ['dark', 'en'], ['light', 'fr'], ['light', 'en']]
  for (const round of ['MISS', 'HIT'] as const) {
    for (const [theme, language] of clients) {
      const response = await app.inject({ url: '/both', headers: { 'x-theme': theme!, 'accept-language': language! } })
      expectCache(t, response, round, `${theme}/${language}, ${round === 'MISS' ? 'first' : 'again'}`)
      t.equal(response.body, `${theme}/${language}`, `${theme}/${language}: its own variant`)
    }
  }
  t.equal(renders, 4, 'four variants, each rendered once')
})

for (const [vary, label] of [
  ['*', 'Vary: *'],
  ['Cookie', 'Vary: Cookie'],
  ['Authorization', 'Vary: Authorization'],
  ['Accept-Language, Cookie', 'Vary: Accept-Language, Cookie'],
  ['accept-encoding, *', 'Vary: accept-encoding, *']
] as const) {
  onEachStore(t, redis, `${label} is never stored`, async (t, backend) => {
    const app = await appOn(t, backend)
    await app.register(fastifyCache, cacheOptions(backend))
    let renders = 0
    app.get('/varies', { config: { cache: { ttl: 60 } } }, async (request, reply) => {
      reply.header('vary', vary)
      return `render ${++renders}`
    })
    await ready(t, app, backend)
    for (const attempt of [1, 2, 3]) {
      const response = await app.inject({ url: '/varies', headers: { 'accept-language': 'fr' } })
      expectNotHit(t, response, `request ${attempt}`)
      t.equal(response.body, `render ${attempt}`, `request ${attempt}: rendered by the handler`)
      t.ok(varyOf(response).length > 0, `request ${attempt}: the handler's vary is sent`)
    }
    t.equal(app.cache.stats().hits, 0, 'no hits counted')
  })
}
