import t from 'tap'
import { redisForTest } from '../helpers/redis.js'
import { admin, buildBlog, Visitor } from './fixtures/blog.js'

const redis = await redisForTest(t)

t.test('the index, the about page and a post are MISS, then HIT, with the same page', async (t) => {
  const app = await buildBlog(t, redis)
  const reader = new Visitor(app)
  for (const url of ['/', '/about', '/post/1']) {
    const first = await reader.get(url)
    t.equal(first.statusCode, 200, `${url} answers`)
    t.equal(first.headers['x-cache'], 'MISS', `${url} is computed first`)
    t.match(first.headers['content-type'], /^text\/html/)
    t.notOk(first.headers['set-cookie'], `${url} sets no cookie for an anonymous reader`)
    const second = await reader.get(url)
    t.equal(second.headers['x-cache'], 'HIT', `${url} is then served from the cache`)
    t.equal(second.body, first.body, `${url} is the same page`)
  }
  const keys = (await app.cache.keys()).map((entry) => entry.key).sort()
  t.same(keys, ['view//', 'view//about', 'view//post/1'], 'Flask-Caching keys: view/<path>')
  const ttls = new Map((await app.cache.keys()).map((entry) => [entry.key, entry.ttlMs]))
  t.ok((ttls.get('view//') ?? 0) > 19 * 60_000 && (ttls.get('view//') ?? 0) <= 20 * 60_000, 'index: 20 minutes')
  t.ok((ttls.get('view//about') ?? 0) > 119 * 60_000, 'about: 2 hours')
  t.ok((ttls.get('view//post/1') ?? 0) > 29 * 60_000 && (ttls.get('view//post/1') ?? 0) <= 30 * 60_000, 'post: 30 minutes')
})

t.test('the index lists published posts, newest first, with previews; posts render their markdown', async (t) => {
  const app = await buildBlog(t, redis)
  const index = await app.inject('/')
  const titles = [...index.body.matchAll(/<h2><a href="\/post\/(\d+)">([^<]+)<\/a><\/h2>/g)].map((m) => m[2])
  t.same(titles, [
    'What the cache dashboard shows',
    'Why the purge comes after the commit',
    'From Flask-Caching to fastify-cache, line by line',
    '利用Redis做Flask緩存後端'
  ], 'seeded posts, newest first, drafts left out')
  t.match(index.body, /這個博客的起點是一篇2019年的文章/, 'a preview of the Chinese post')
  t.notMatch(index.body, /<blockquote>/, 'previews are plain text')

  const post = await app.inject('/post/2')
  t.match(post.body, /<table>/, 'markdown tables render')
  t.match(post.body, /<code>view\/&lt;path&gt;<\/code>/, 'code is escaped inside')
  const about = await app.inject('/about')
  t.match(about.body, /demo blog of <strong>fastify-cache<\/strong>/)
})

t.test('pagination: 10 per page, ?page=N cached per page, purged together', async (t) => {
  const app = await buildBlog(t, redis)
  for (let i = 1; i <= 8; i++) app.posts.create({ title: `Extra post ${i}`, body: `Body ${i}`, published: true })
  // 4 seeded + 8 = 12 published: two pages.
  const first = await app.inject('/')
  t.equal([...first.body.matchAll(/class="preview"/g)].length, 10, 'ten previews on page 1')
  t.match(first.body, /href="\/\?page=2"/, 'a link to page 2')
  const second = await app.inject('/?page=2')
  t.equal(second.statusCode, 200)
  t.equal(second.headers['x-cache'], 'MISS')
  t.equal([...second.body.matchAll(/class="preview"/g)].length, 2, 'two previews on page 2')
  t.match(second.body, /利用Redis做Flask緩存後端/, 'the oldest post is on page 2')
  t.equal((await app.inject('/?page=2')).headers['x-cache'], 'HIT', 'page 2 is cached too')

  const [entry] = (await app.cache.keys()).filter((e) => e.key === 'view//')
  t.equal(entry?.variants, 2, 'both pages live under view//')
  t.equal(await app.cache.delete('view//'), true)
  t.equal((await app.inject('/?page=2')).headers['x-cache'], 'MISS', 'deleting view// purged page 2 as well')

  const beyond = await app.inject('/?page=3')
  t.equal(beyond.statusCode, 404, 'a page past the end is a 404')
  t.equal((await app.inject('/?page=3')).headers['x-cache'], 'BYPASS', 'and is never cached')
  for (const bad of ['/?page=abc', '/?page=0', '/?page=-1']) {
    const response = await app.inject(bad)
    t.equal(response.statusCode, 400, `${bad} is a 400`)
    t.match(response.body, /Bad request/, `${bad} renders the 400 page`)
  }
  const other = await app.inject('/?utm_source=x')
  t.equal(other.statusCode, 200)
  t.not(other.headers['x-cache'], 'MISS', 'a query string other than page is never stored')
})

t.test('an unknown post or path is a 404 page that is never cached', async (t) => {
  const app = await buildBlog(t, redis)
  for (const url of ['/post/999', '/post/abc', '/post/01', '/nowhere']) {
    const first = await app.inject(url)
    t.equal(first.statusCode, 404, `${url} is a 404`)
    t.match(first.body, /Page not found/, `${url} renders the 404 page`)
    t.match(first.headers['content-type'], /^text\/html/)
    const second = await app.inject(url)
    t.equal(second.statusCode, 404)
    t.not(second.headers['x-cache'], 'HIT', `${url} is not served from the cache`)
  }
  t.same(await app.cache.keys(), [], 'nothing stored')
})

t.test('a draft is a 404 for anonymous readers, cached or not, and visible to the admin', async (t) => {
  const app = await buildBlog(t, redis)
  const draft = app.posts.listAll().find((post) => !post.published)
  t.ok(draft, 'the seed has a draft')
  const url = `/post/${draft?.id ?? 0}`
  const reader = new Visitor(app)
  t.equal((await reader.get(url)).statusCode, 404, 'anonymous: 404')

  const editor = await admin(app)
  const preview = await editor.get(url)
  t.equal(preview.statusCode, 200, 'the admin sees the draft')
  t.equal(preview.headers['x-cache'], 'BYPASS', 'and the page is not stored')
  t.match(preview.body, /class="badge">draft</)

  const after = await reader.get(url)
  t.equal(after.statusCode, 404, 'anonymous: still 404 after the admin looked at it')
  t.notMatch((await reader.get('/')).body, /two tiers and a bus/, 'drafts are not on the index')
  t.notOk((await app.cache.keys()).some((entry) => entry.key === `view/${url}`), 'no cached page for the draft')
})

t.test('static CSS, security headers, and no absolute URL taken from the Host header', async (t) => {
  const app = await buildBlog(t, redis, { publicUrl: 'https://blog.example.org/' })
  const css = await app.inject('/static/style.css')
  t.equal(css.statusCode, 200)
  t.match(css.headers['content-type'], /^text\/css/)
  t.match(css.body, /\.admin-bar/)

  const page = await app.inject({ url: '/post/1', headers: { host: 'evil.example.com', 'x-forwarded-host': 'evil.example.com' } })
  t.match(page.body, '<link rel="canonical" href="https://blog.example.org/post/1">', 'canonical from configuration')
  t.notMatch(page.body, /evil\.example\.com/, 'the Host header never reaches the page')
  t.match(page.headers['content-security-policy'], /default-src 'none'/)
  t.equal(page.headers['x-content-type-options'], 'nosniff')

  const hit = await app.inject({ url: '/post/1', headers: { host: 'other.example.net' } })
  t.equal(hit.headers['x-cache'], 'HIT')
  t.notMatch(hit.body, /other\.example\.net/)
  t.match(hit.headers['content-security-policy'], /default-src 'none'/, 'a hit carries the headers too')

  const plain = await buildBlog(t, redis)
  t.notMatch((await plain.inject('/post/1')).body, /rel="canonical"/, 'no public URL configured: no canonical link')
})

t.test('BLOG_SLOW_MS: simulated work on the index still serves the page', async (t) => {
  const app = await buildBlog(t, redis, { slowMs: 20 })
  const first = await app.inject('/')
  t.equal(first.statusCode, 200)
  t.equal(first.headers['x-cache'], 'MISS')
  t.equal((await app.inject('/')).headers['x-cache'], 'HIT')
})
