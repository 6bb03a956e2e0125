// No leaks: with two cookie jars, an admin and an anonymous reader, nothing personal is ever stored or served to
// someone else. Responses that set a cookie are never stored, logged-in pages are never stored, anonymous cached pages
// never carry admin controls, and drafts never reach readers, on one instance or across two sharing one Redis.
import type { FastifyInstance, LightMyRequestResponse as InjectResponse } from 'fastify'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { redisForTest } from '../helpers/redis.js'
import { admin, ADMIN_PASSWORD, ADMIN_USER, buildBlog, csrfOf, Visitor } from '../demo-blog/fixtures/blog.js'
import { blogFleet, BusWatch } from '../integrity/fixtures/pair.js'
import { pageKeys, storedBytes } from './fixtures/store.js'

const redis = await redisForTest(t)
const client = new Redis(redis.url)
t.teardown(async () => { await client.quit() })

/** What only a logged-in admin's page carries. */
const ADMIN_MARKERS: Array<[string, RegExp]> = [
  ['the admin bar', /admin-bar/],
  ['"Logged in as"', /Logged in as/],
  ['a CSRF token', /name="_csrf"/],
  ['the logout form', /action="\/logout"/],
  ['a link into /admin', /href="\/admin/],
  ['an Edit link', />Edit</],
  ['the draft badge', /class="badge">draft</]
]

function adminMarkersIn (html: string): string[] {
  return ADMIN_MARKERS.filter(([, pattern]) => pattern.test(html)).map(([name]) => name)
}

/** Bytes that must never be in the store: session cookies, CSRF fields, admin markup. */
async function secretsInStore (app: FastifyInstance, extra: string[] = []): Promise<string[]> {
  const found: string[] = []
  for (const { key, field, value } of await storedBytes(client, app.cache.prefix)) {
    const text = value.toString('latin1')
    for (const needle of ['blog_session', 'set-cookie', '_csrf', 'admin-bar', 'Logged in as', ...extra]) {
      if (text.includes(needle)) found.push(`${key}${field === undefined ? '' : ` [${field.slice(0, 12)}]`} holds ${needle}`)
    }
  }
  return found
}

/** Pages stored under the app's prefix, without the prefix. */
async function cached (app: FastifyInstance): Promise<string[]> {
  return await pageKeys(client, app.cache.prefix)
}

const PAGES = ['/', '/?page=2', '/about', '/post/1', '/post/2']

async function withTwoPages (app: FastifyInstance): Promise<void> {
  for (let i = 1; i <= 8; i++) app.posts.create({ title: `Extra post ${i}`, body: `Body ${i}.`, published: true })
}

t.test('the admin first on a cold cache, then a reader: nothing the admin saw was stored or is shown to the reader', async (t) => {
  const app = await buildBlog(t, redis)
  await withTwoPages(app)
  const editor = await admin(app)
  const reader = new Visitor(app)
  await app.cache.clear()

  for (const url of PAGES) {
    const mine = await editor.get(url)
    t.equal(mine.headers['x-cache'], 'BYPASS', `admin ${url}: BYPASS`)
    t.ok(adminMarkersIn(mine.body).includes('the admin bar'), `admin ${url}: the admin's own page`)
  }
  t.same(await cached(app), [], 'nothing stored after the admin\'s visits')

  for (const url of PAGES) {
    const first = await reader.get(url)
    t.equal(first.headers['x-cache'], 'MISS', `reader ${url}: computed for the reader, not the admin's copy`)
    t.same(adminMarkersIn(first.body), [], `reader ${url}: no admin controls`)
    t.notOk(first.headers['set-cookie'], `reader ${url}: no cookie`)
    const second = await reader.get(url)
    t.equal(second.headers['x-cache'], 'HIT')
    t.same(adminMarkersIn(second.body), [], `reader ${url} (cached): no admin controls`)
  }
  // And the other way round: the admin is never served the readers' cached copy.
  for (const url of PAGES) {
    const mine = await editor.get(url)
    t.equal(mine.headers['x-cache'], 'BYPASS', `admin ${url} after the reader: still BYPASS`)
    t.match(mine.body, /Logged in as <strong>admin<\/strong>/)
  }
  t.same(await secretsInStore(app), [], 'the store holds no cookie, token or admin markup')
})

t.test('admin and reader interleaved and concurrent, on two instances sharing Redis', async (t) => {
  const [a, b] = await blogFleet(t, redis) as [FastifyInstance, FastifyInstance]
  await withTwoPages(a)
  const editors = [await admin(a), await admin(b)]
  const readers = [new Visitor(a), new Visitor(b)]
  const problems: string[] = []
  for (let round = 0; round < 10; round++) {
    await a.cache.clear()
    const requests: Array<Promise<[string, InjectResponse]>> = []
    for (const url of PAGES) {
      for (let i = 0; i < 2; i++) {
        const editor = editors[(round + i) % 2] as Visitor
        const reader = readers[(round + i + 1) % 2] as Visitor
        // The admin's request is sent first, in the same tick as the reader's.
        requests.push(editor.get(url).then((response) => [`admin ${url}`, response]))
        requests.push(reader.get(url).then((response) => [`reader ${url}`, response]))
      }
    }
    for (const [label, response] of await Promise.all(requests)) {
      const markers = adminMarkersIn(response.body)
      if (label.startsWith('reader') && markers.length > 0) problems.push(`round ${round}, ${label}: ${markers.join(', ')}`)
      if (label.startsWith('admin') && response.headers['x-cache'] !== 'BYPASS') problems.push(`round ${round}, ${label}: ${response.headers['x-cache']}`)
      if (label.startsWith('admin') && !markers.includes('the admin bar')) problems.push(`round ${round}, ${label}: served a reader's page`)
    }
  }
  t.same(problems, [], 'readers never got admin pages, the admin never got cached ones')
  t.same(await secretsInStore(a), [])
})

t.test('responses that set a cookie are never stored: the CSRF secret, login, logout, flash messages', async (t) => {
  const app = await buildBlog(t, redis)
  const prefixKeys = async (): Promise<string[]> => await cached(app)
  const visitor = new Visitor(app)
  const reader = new Visitor(app)
  for (const url of ['/', '/about', '/post/1']) await reader.get(url)
  const before = await prefixKeys()
  t.same(before, ['view//', 'view//about', 'view//post/1'])

  const seen: Array<[string, InjectResponse]> = []
  const record = (label: string, response: InjectResponse): InjectResponse => {
    seen.push([label, response])
    return response
  }
  const form = record('GET /login', await visitor.get('/login'))
  t.ok(form.headers['set-cookie'], 'GET /login issues the CSRF secret in a cookie')
  record('POST /login (wrong password)', await visitor.post('/login', { username: ADMIN_USER, password: 'nope', _csrf: csrfOf(form.body) }))
  const login = record('POST /login', await visitor.post('/login', { username: ADMIN_USER, password: ADMIN_PASSWORD, _csrf: csrfOf(form.body) }))
  t.equal(login.statusCode, 302)
  t.ok(login.headers['set-cookie'], 'login sets the session cookie')
  // Login purges the index (like the Flask post): the reader fills it again.
  await reader.get('/')
  const create = record('POST /admin/post', await visitor.post('/admin/post', {
    _csrf: await visitor.csrfFrom('/admin/post/new'), title: 'Cookie test', body: 'Body.', published: 'on'
  }))
  t.ok(create.headers['set-cookie'], 'a flash message rewrites the session')
  const list = record('GET /admin (flash consumed)', await visitor.get('/admin'))
  t.ok(list.headers['set-cookie'], 'consuming the flash rewrites the session again')
  record('GET /admin/cache', await visitor.get('/admin/cache'))
  for (const url of ['/', '/about', '/post/1']) record(`admin GET ${url}`, await visitor.get(url))
  const logout = record('POST /logout', await visitor.post('/logout', { _csrf: csrfOf(list.body) }))
  t.ok(logout.headers['set-cookie'], 'logout clears the cookie')
  record('GET / after logout', await visitor.get('/'))

  for (const [label, response] of seen) {
    if (response.headers['set-cookie'] !== undefined) {
      t.notOk(['MISS', 'HIT', 'STALE'].includes(response.headers['x-cache'] as string),
        `${label} sets a cookie and was neither stored nor served from the cache (x-cache: ${response.headers['x-cache'] ?? 'none'})`)
    }
  }
  const after = await prefixKeys()
  t.ok(after.every((key) => ['view//', 'view//about', 'view//post/1', 'view//post/6'].includes(key)),
    `only anonymous pages are stored: ${after.join(', ')}`)
  t.same(await secretsInStore(app), [], 'no stored byte holds a cookie, a token or admin markup')
})

t.test('pages made for a session are cache-control: private, no-store; anonymous pages are not', async (t) => {
  const app = await buildBlog(t, redis)
  const editor = await admin(app)
  const personal = 'private, no-store'
  // Admin pages, public pages rendered for the admin (a draft's preview and 404s included).
  for (const url of ['/admin', '/admin/post/new', '/admin/post/1/edit', '/admin/cache', '/', '/?page=1', '/about', '/post/1', '/post/5', '/post/999', '/nowhere']) {
    const response = await editor.get(url)
    t.equal(response.headers['cache-control'], personal, `logged in, ${url} (${response.statusCode}): ${personal}`)
  }
  const invalid = await editor.post('/admin/post', { _csrf: await editor.csrfFrom('/admin/post/new'), title: '', body: '' })
  t.equal(invalid.statusCode, 400)
  t.equal(invalid.headers['cache-control'], personal, 'the admin form sent back with errors too')
  // The login form carries the visitor's CSRF token: personal as well, though nobody is logged in.
  const reader = new Visitor(app)
  t.equal((await reader.get('/login')).headers['cache-control'], personal, 'the login form')
  t.equal((await reader.post('/login', { username: 'x', password: 'y', _csrf: csrfOf((await reader.get('/login')).body) })).headers['cache-control'],
    personal, 'the login form sent back after a failure')

  for (const url of ['/', '/about', '/post/1', '/nowhere']) {
    for (const pass of ['first', 'second']) {
      const response = await new Visitor(app).get(url)
      t.notMatch(String(response.headers['cache-control'] ?? ''), /private|no-store/,
        `anonymous ${url}, ${pass} read (${response.headers['x-cache'] ?? response.statusCode}): shareable`)
    }
  }
  t.equal((await new Visitor(app).get('/about')).headers['x-cache'], 'HIT', 'and still cached')
})

t.test('stale, expired, revoked, foreign and garbage session cookies: the reader is anonymous and no cookie is stored', async (t) => {
  const app = await buildBlog(t, redis)
  const other = await buildBlog(t, redis) // another session key
  // Session ids with a row that is live, and with one that was revoked (logged out).
  const live = app.sessions.create(1, 3600_000)
  const revoked = app.sessions.create(1, 3600_000)
  app.sessions.revoke(revoked)
  const seal = (target: FastifyInstance, data: Record<string, unknown>): string =>
    target.encodeSecureSession(target.createSecureSession(data))
  const cookies: Array<[string, string]> = [
    ['an expired cookie naming a live session', seal(app, { sid: live, __ts: Math.round(Date.now() / 1000) - 2 * 24 * 3600 })],
    ['a live session sealed with another key', seal(other, { sid: live })],
    ['a logged-out (revoked) session', seal(app, { sid: revoked })],
    ['a session id that was never issued', seal(app, { sid: 'A'.repeat(43) })],
    ['a user named in the cookie, without a session id', seal(app, { user: { id: 1, username: ADMIN_USER } })],
    ['a session without a user (CSRF secret and flash only)', seal(app, { _csrf: 'secret', flash: { message: 'hi', kind: 'ok' } })],
    ['garbage', 'AAAA;BBBB'],
    ['an empty value', '']
  ]
  for (const [name, value] of cookies) {
    await app.cache.clear()
    for (const url of ['/', '/about', '/post/1']) {
      const response = await app.inject({ url, headers: { cookie: `blog_session=${encodeURIComponent(value)}` } })
      t.equal(response.statusCode, 200)
      t.same(adminMarkersIn(response.body), [], `${name}, ${url}: an anonymous page`)
      t.equal(response.headers['x-cache'], response.headers['set-cookie'] === undefined ? 'MISS' : 'BYPASS',
        `${name}, ${url}: stored only when it sets no cookie`)
      const next = await app.inject(url)
      t.notOk(next.headers['set-cookie'], `${name}, ${url}: the next reader gets no cookie`)
      t.same(adminMarkersIn(next.body), [])
    }
    t.same(await secretsInStore(app), [], `${name}: nothing personal stored`)
  }
  // The live session, in a fresh cookie sealed with the right key, is a login: the refusals above were the cookie's.
  const sealedLive = await app.inject({ url: '/about', headers: { cookie: `blog_session=${encodeURIComponent(seal(app, { sid: live }))}` } })
  t.equal(sealedLive.headers['x-cache'], 'BYPASS', 'a fresh cookie naming the live session is logged in')
  t.match(sealedLive.body, /admin-bar/)
  // The real admin cookie next to the forged ones still bypasses.
  const editor = await admin(app)
  t.equal((await editor.get('/about')).headers['x-cache'], 'BYPASS')
})

async function draftNeverLeaks (t: Test, apps: FastifyInstance[]): Promise<void> {
  const [a] = apps as [FastifyInstance]
  const marker = `SECRET-DRAFT-${Math.random().toString(36).slice(2)}`
  const editor = await admin(a)
  const created = await editor.post('/admin/post', {
    _csrf: await editor.csrfFrom('/admin/post/new'), title: `${marker} title`, body: `${marker} body`
  })
  t.equal(created.statusCode, 302, 'the draft is created (published unticked)')
  const id = a.posts.listAll().find((post) => post.title === `${marker} title`)?.id ?? 0
  t.ok(id > 0)
  t.equal(a.posts.get(id)?.published, false, 'as a draft')

  // The admin previews it everywhere, on a cold cache, before any reader.
  await a.cache.clear()
  for (const app of apps) {
    const editorHere = new Visitor(app)
    for (const [name, value] of editor.cookies) editorHere.cookies.set(name, value)
    for (const url of [`/post/${id}`, '/', '/?page=1']) {
      const preview = await editorHere.get(url)
      t.equal(preview.headers['x-cache'], 'BYPASS', `admin preview ${url}: BYPASS`)
    }
    t.match((await editorHere.get(`/post/${id}`)).body, marker, 'the admin sees the draft')
  }
  for (const app of apps) {
    const reader = new Visitor(app)
    for (const url of [`/post/${id}`, `/post/%3${String(id).slice(0, 1)}${String(id).slice(1)}`, `/post/0${id}`, `/post/${id}/`]) {
      for (const pass of ['first', 'second']) {
        const response = await reader.get(url)
        t.equal(response.statusCode, 404, `reader ${url} (${pass}): 404`)
        t.notMatch(response.body, marker)
      }
    }
    for (const url of ['/', '/?page=1', '/about']) t.notMatch((await reader.get(url)).body, marker, `reader ${url}: no trace of the draft`)
  }
  t.same(await secretsInStore(a, [marker]), [], 'the draft is nowhere in the store')
  t.notOk((await pageKeys(client, a.cache.prefix)).includes(`view//post/${id}`), 'no page stored for it')
}

t.test('a draft never reaches a reader, even after the admin previewed it (one instance)', async (t) => {
  const app = await buildBlog(t, redis)
  await draftNeverLeaks(t, [app])
})

t.test('a draft never reaches a reader, even after the admin previewed it (two instances, L1 and bus)', async (t) => {
  await draftNeverLeaks(t, await blogFleet(t, redis))
})

t.test('unpublishing a post hides it from readers of every instance', async (t) => {
  const apps = await blogFleet(t, redis)
  const [a, b] = apps as [FastifyInstance, FastifyInstance]
  const watch = await BusWatch.start(t, redis.url, a.cache.prefix)
  const editor = await admin(a)
  const immediate: string[] = []
  const settled: string[] = []
  const stillShown = async (round: number, moment: string, id: number, title: string, into: string[]): Promise<void> => {
    for (const [name, app] of [['A', a], ['B', b]] as const) {
      const post = await app.inject(`/post/${id}`)
      if (post.statusCode !== 404) into.push(`round ${round}, ${moment}: instance ${name} still serves the unpublished post (${post.headers['x-cache']})`)
      if ((await app.inject('/')).body.includes(title)) into.push(`round ${round}, ${moment}: instance ${name}'s index still lists it`)
    }
  }
  for (let round = 0; round < 20; round++) {
    const title = `Round ${round} ${Math.random().toString(36).slice(2)}`
    await editor.post('/admin/post', { _csrf: await editor.csrfFrom('/admin/post/new'), title, body: 'Soon a draft.', published: 'on' })
    const id = a.posts.listAll().find((post) => post.title === title)?.id ?? 0
    // Both instances cache the published post and the index (in L1 and in Redis).
    for (const app of apps) {
      for (let i = 0; i < 2; i++) {
        await app.inject(`/post/${id}`)
        await app.inject('/')
      }
    }
    // Unpublished on A in even rounds, on B (the same session) in odd ones.
    const writer = round % 2 === 0 ? editor : new Visitor(b)
    if (writer !== editor) for (const [name, value] of editor.cookies) writer.cookies.set(name, value)
    const _csrf = await writer.csrfFrom(`/admin/post/${id}/edit`)
    const saved = await writer.post(`/admin/post/${id}/edit`, { _csrf, title, body: 'Now a draft.' })
    t.equal(saved.statusCode, 302, `round ${round}: unpublished`)
    await stillShown(round, 'right after the edit', id, title, immediate)
    await watch.settle(apps)
    await stillShown(round, 'once the bus settled', id, title, settled)
  }
  t.same(settled, [], 'once the purges are delivered, no instance shows the unpublished post')
  if (immediate.length > 0) t.comment(immediate.join('\n'))
  // A purge waits until the other instances confirm on the bus that they dropped their L1 copies, so the edit's
  // response comes after every instance forgot the post.
  t.same(immediate, [], 'even the very next read, right after the edit\'s response, no longer shows it')
})
