// @fastify/secure-session: a signed-in reader bypasses the cache through the route's `unless`, a response that sets
// the session cookie is never stored (whatever the order of registration: the cookie is written in an onSend hook),
// and an anonymous reader never gets a set-cookie from the cache.
import { randomBytes } from 'node:crypto'
import t from 'tap'
import fastifySecureSession from '@fastify/secure-session'
import fastifyCache from '../../plugin/index.js'
import { redisForFile } from '../helpers/redis.js'
import { appOn, cacheOptions, expectCache, expectNotHit, onEachStore, ORDERS, ready } from './helpers.js'

const { redis } = await redisForFile(t)

declare module '@fastify/secure-session' {
  interface SessionData {
    user: string
    visits: number
  }
}

/** The `session=…` pair of a set-cookie header, as a browser sends it back (still encoded). */
function cookieOf (header: string | string[] | number | undefined): string | undefined {
  const all = Array.isArray(header) ? header : header === undefined ? [] : [String(header)]
  return all.map((line) => line.split(';')[0]!.trim()).find((pair) => pair.startsWith('session='))
}

for (const order of ORDERS) {
  onEachStore(t, redis, `@fastify/secure-session registered ${order} the cache`, async (t, backend) => {
    const app = await appOn(t, backend)
    const session = { key: randomBytes(32), cookie: { path: '/', httpOnly: true } }
    if (order === 'before') await app.register(fastifySecureSession, session)
    await app.register(fastifyCache, cacheOptions(backend))
    if (order === 'after') await app.register(fastifySecureSession, session)
    let indexRenders = 0
    let welcomeRenders = 0
    app.get('/', { config: { cache: { ttl: 60, unless: (request) => request.session.get('user') !== undefined } } }, async (request) => {
      indexRenders++
      return `hello ${request.session.get('user') ?? 'anonymous'}`
    })
    app.post('/login', async (request) => {
      request.session.set('user', 'alice')
      return 'signed in'
    })
    // A cached route whose response sets the session cookie: each visit counts in the reader's session.
    app.get('/welcome', { config: { cache: { ttl: 60 } } }, async (request) => {
      welcomeRenders++
      const visits = (request.session.get('visits') ?? 0) + 1
      request.session.set('visits', visits)
      return `welcome, visit ${visits}`
    })
    await ready(t, app, backend)

    const anonymous = await app.inject('/')
    expectCache(t, anonymous, 'MISS', 'anonymous, cold')
    t.equal(anonymous.body, 'hello anonymous')
    t.equal(anonymous.headers['set-cookie'], undefined, 'anonymous, cold: no set-cookie')

    const login = await app.inject({ method: 'POST', url: '/login' })
    const sessionCookie = cookieOf(login.headers['set-cookie'])
    t.ok(sessionCookie !== undefined, 'login sets the session cookie')

    const signedIn = await app.inject({ url: '/', headers: { cookie: sessionCookie ?? '' } })
    expectCache(t, signedIn, 'BYPASS', 'alice')
    t.equal(signedIn.body, 'hello alice', 'alice gets her page')

    for (const n of [1, 2]) {
      const hit = await app.inject('/')
      expectCache(t, hit, 'HIT', `anonymous after alice, ${n}`)
      t.equal(hit.body, 'hello anonymous', `anonymous after alice, ${n}: never alice's page`)
      t.equal(hit.headers['set-cookie'], undefined, `anonymous after alice, ${n}: no set-cookie`)
    }
    const againSignedIn = await app.inject({ url: '/', headers: { cookie: sessionCookie ?? '' } })
    expectCache(t, againSignedIn, 'BYPASS', 'alice again')
    t.equal(againSignedIn.body, 'hello alice', 'alice again: her page, not the cached one')
    t.equal(indexRenders, 3, 'the index rendered for the cold miss and for alice twice')

    // Each response of /welcome sets the cookie: none is stored, and each reader gets their own count.
    let visitorCookie: string | undefined
    for (const n of [1, 2, 3]) {
      const response = await app.inject({ url: '/welcome', headers: visitorCookie === undefined ? {} : { cookie: visitorCookie } })
      const what = `/welcome, visit ${n}`
      expectNotHit(t, response, what)
      t.equal(response.body, `welcome, visit ${n}`, `${what}: the reader's own count`)
      const set = cookieOf(response.headers['set-cookie'])
      t.ok(set !== undefined, `${what}: the session cookie is set`)
      if (set !== undefined) visitorCookie = set
    }
    const stranger = await app.inject('/welcome')
    expectNotHit(t, stranger, '/welcome, a new reader')
    t.equal(stranger.body, 'welcome, visit 1', "a new reader starts at 1, not at someone else's count")
    t.ok(cookieOf(stranger.headers['set-cookie']) !== undefined, 'a new reader gets a cookie of their own')
    t.equal(welcomeRenders, 4, '/welcome rendered every time')
  })
}
