// The real thing: Debian's Varnish with the xkey vmod, running the repo's VCL, in front of the demo blog on a real
// Redis. The blog tags its pages with surrogate keys and sends its purges to Varnish (EDGE_PURGE_URL).
import t from 'tap'
import { freePort, redisForTest } from '../helpers/redis.js'
import { startVarnish } from '../helpers/varnish.js'
import { admin, buildBlog } from '../demo-blog/fixtures/blog.js'

const redis = await redisForTest(t)
const varnishPort = await freePort()
const app = await buildBlog(t, redis, { edgePurgeUrl: `http://127.0.0.1:${varnishPort}/` })
await app.listen({ host: '127.0.0.1', port: 0 })
const backendPort = (app.server.address() as { port: number }).port

/** Requests that reached the blog, by URL: a page Varnish serves from its cache adds nothing here. */
const backendHits = new Map<string, number>()
app.server.on('request', (request: { url?: string }) => {
  const url = request.url ?? ''
  backendHits.set(url, (backendHits.get(url) ?? 0) + 1)
})

const varnish = await startVarnish(t, { port: varnishPort, backendPort })

interface Seen {
  status: number
  body: string
  /** Varnish's `x-varnish`: one transaction id on a miss or a pass, two (this one and the object's) on a hit. */
  varnishHit: boolean
  headers: Headers
}

/** An anonymous reader's GET through Varnish: no cookie, so Varnish may serve it from its cache. */
async function read (path: string): Promise<Seen> {
  const response = await fetch(varnish.url + path)
  const body = await response.text()
  const ids = (response.headers.get('x-varnish') ?? '').trim().split(/\s+/)
  return { status: response.status, body, varnishHit: ids.length === 2, headers: response.headers }
}

t.test('an anonymous reader is served by Varnish once the page is cached there', async (t) => {
  const first = await read('/post/3')
  t.equal(first.status, 200)
  t.equal(first.varnishHit, false, 'the first read went to the blog')
  t.match(first.body, /Why the purge comes after the commit/)
  t.equal(first.headers.get('x-cache'), 'MISS', 'and the blog computed and stored it')
  t.equal(first.headers.get('surrogate-key'), null, 'Varnish keeps the keys to itself')
  t.equal(first.headers.get('xkey'), null)
  t.equal(backendHits.get('/post/3'), 1)
  for (let i = 0; i < 3; i++) {
    const again = await read('/post/3')
    t.equal(again.varnishHit, true, `read ${i + 2} is a Varnish hit`)
    t.equal(again.body, first.body)
  }
  t.equal(backendHits.get('/post/3'), 1, 'the blog saw one request for it')
  for (const path of ['/about', '/']) {
    await read(path)
    t.equal((await read(path)).varnishHit, true, `${path} is cached in Varnish too`)
  }
})

t.test('an admin edit purges the post in Redis and in Varnish; untouched pages stay cached', async (t) => {
  const before = backendHits.get('/post/3') ?? 0
  t.equal((await read('/post/3')).varnishHit, true, 'cached in Varnish before the edit')
  const aboutHits = backendHits.get('/about') ?? 0

  const editor = await admin(app)
  const _csrf = await editor.csrfFrom('/admin/post/3/edit')
  const edited = await editor.post('/admin/post/3/edit', {
    _csrf, title: 'Purged at the edge too', body: 'The **new** body', published: 'on'
  })
  t.equal(edited.statusCode, 302, 'the edit is saved; its purges (Redis, then Varnish) are done before the redirect')

  const post = await read('/post/3')
  t.equal(post.status, 200)
  t.equal(post.varnishHit, false, 'Varnish no longer had it')
  t.match(post.body, /Purged at the edge too/, 'the next anonymous read shows the new title')
  t.match(post.body, /The <strong>new<\/strong> body/)
  t.notMatch(post.body, /Why the purge comes after the commit/)
  t.equal(post.headers.get('x-cache'), 'MISS', 'and Redis no longer had it either: the blog computed it')
  t.equal(backendHits.get('/post/3'), before + 1)
  t.equal((await read('/post/3')).varnishHit, true, 'the new version is cached in Varnish again')

  const index = await read('/')
  t.equal(index.varnishHit, false, 'the index (view//) was purged as well')
  t.match(index.body, /Purged at the edge too/)

  const about = await read('/about')
  t.equal(about.varnishHit, true, 'an untouched page is still a Varnish hit')
  t.equal(backendHits.get('/about'), aboutHits, 'and the blog was not asked for it')
})

t.test('a logged-in admin is never served from Varnish, nor cached there', async (t) => {
  const editor = await admin(app)
  const cookie = [...editor.cookies].map(([name, value]) => `${name}=${encodeURIComponent(value)}`).join('; ')
  const hits = backendHits.get('/post/3') ?? 0
  for (let i = 0; i < 2; i++) {
    const response = await fetch(varnish.url + '/post/3', { headers: { cookie } })
    const body = await response.text()
    t.equal(response.headers.get('x-cache'), 'BYPASS', 'the blog bypassed its cache for the admin')
    t.match(body, /id="admin-bar"/, 'the admin page, with its bar')
  }
  t.equal(backendHits.get('/post/3'), hits + 2, 'both went to the blog')
  const reader = await read('/post/3')
  t.equal(reader.varnishHit, true)
  t.notMatch(reader.body, /id="admin-bar"/, 'readers never get the admin\'s page')
})

t.test('clear() empties Varnish too, through the catch-all key every page carries', async (t) => {
  t.equal((await read('/about')).varnishHit, true)
  await app.cache.clear()
  t.equal((await read('/about')).varnishHit, false)
  t.equal((await read('/post/3')).varnishHit, false)
  t.equal((await read('/about')).varnishHit, true)
})

t.test('Varnish refuses a PURGE without keys, and answers one with keys', async (t) => {
  const none = await fetch(varnish.url + '/', { method: 'PURGE' })
  await none.arrayBuffer()
  t.equal(none.status, 400)
  const some = await fetch(varnish.url + '/', { method: 'PURGE', headers: { xkey: 'no-such-key' } })
  t.match(await some.text(), /Invalidated 0 objects/)
  t.equal(some.status, 200)
})
