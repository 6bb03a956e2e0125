// Logout revokes the session. The cookie is sealed but stateless; what makes it a login is a row in the blog's
// `sessions` table, so a copy of the cookie taken before logout (a stolen one, a shared computer's) opens nothing.
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { redisForTest } from '../helpers/redis.js'
import { admin, ADMIN_PASSWORD, ADMIN_USER, buildBlog, csrfOf, tempDir, Visitor } from '../demo-blog/fixtures/blog.js'
import { blogFleet } from '../integrity/fixtures/pair.js'

const redis = await redisForTest(t)

const ADMIN_PAGES = ['/admin', '/admin/post/new', '/admin/post/1/edit', '/admin/cache']
const PUBLIC_PAGES = ['/', '/about', '/post/1']

/** A second browser holding a copy of `visitor`'s cookies, on `app`. */
function copyOf (visitor: Visitor, app: FastifyInstance): Visitor {
  const copy = new Visitor(app)
  for (const [name, value] of visitor.cookies) copy.cookies.set(name, value)
  return copy
}

/** Every row of the blog's content, to show that a refused request changed nothing. */
function content (app: FastifyInstance): string {
  return JSON.stringify(app.db.$client.prepare('SELECT * FROM posts ORDER BY id').all())
}

async function logOut (visitor: Visitor): Promise<void> {
  const response = await visitor.post('/logout', { _csrf: await visitor.csrfFrom('/admin') })
  if (response.statusCode !== 302) throw new Error(`logout answered ${response.statusCode}`)
}

t.test('after logout, a copy of the cookie taken before is refused on every admin page and POST route', async (t) => {
  const app = await buildBlog(t, redis)
  const editor = await admin(app)
  const thief = copyOf(editor, app)
  t.equal((await thief.get('/admin')).statusCode, 200, 'before logout, the copy is a login')
  // Tokens taken with the copy before logout: they match the copy's CSRF secret, so only the session can refuse them.
  const token = await thief.csrfFrom('/admin/post/new')
  t.equal(app.sessions.count(), 1, 'one session row')

  await logOut(editor)
  t.equal(app.sessions.count(), 0, 'logout deleted the row')
  t.equal((await editor.get('/admin')).headers.location, '/login', 'the editor is logged out')

  for (const url of ADMIN_PAGES) {
    const response = await thief.get(url)
    t.equal(response.statusCode, 302, `GET ${url} with the copy: redirected`)
    t.equal(response.headers.location, '/login', `GET ${url}: to /login`)
  }
  await thief.get('/')
  const before = content(app)
  const posts: Array<[string, Record<string, string>]> = [
    ['/admin/post', { title: 'Planted', body: 'By a copied cookie.', published: 'on' }],
    ['/admin/post/1/edit', { title: 'Defaced', body: 'By a copied cookie.', published: 'on' }],
    ['/admin/post/1/delete', {}],
    ['/admin/cache/purge', { key: 'view//' }],
    ['/admin/cache/clear', {}]
  ]
  for (const [url, form] of posts) {
    const response = await thief.post(url, { ...form, _csrf: token })
    t.equal(response.statusCode, 302, `POST ${url} with the copy and its valid token: redirected`)
    t.equal(response.headers.location, '/login', `POST ${url}: to /login`)
  }
  t.equal(content(app), before, 'no post was created, edited or deleted')
  t.ok(await app.cache.has('view//'), 'nothing was purged or cleared')

  for (const url of PUBLIC_PAGES) {
    const page = await thief.get(url)
    t.notMatch(page.body, /admin-bar|Logged in as/, `${url} with the copy: an anonymous page`)
    t.not(page.headers['x-cache'], 'BYPASS', `${url} with the copy: the cache's unless sees nobody logged in`)
  }
  const login = await thief.get('/login')
  t.equal(login.statusCode, 200, 'GET /login with the copy shows the form instead of sending it to /admin')
})

t.test('logging out from any copy, or on any instance, ends the session for every copy', async (t) => {
  const [a, b] = await blogFleet(t, redis) as [FastifyInstance, FastifyInstance]
  const editor = await admin(a)
  const onB = copyOf(editor, b)
  t.equal((await onB.get('/admin')).statusCode, 200, 'one login, valid on both instances')
  await logOut(editor)
  t.equal((await onB.get('/admin')).headers.location, '/login', 'a logout on A is a logout on B (one database)')

  const again = await admin(b)
  const copy = copyOf(again, b)
  await logOut(copy)
  t.equal((await again.get('/admin')).headers.location, '/login', 'a logout from the copy ends the original too')
})

t.test('logging in again ends the session the browser had', async (t) => {
  const app = await buildBlog(t, redis)
  const editor = await admin(app)
  const earlier = copyOf(editor, app)
  // POST /login from a logged-in browser (GET /login would send it to /admin), with its session's token.
  const relogin = await editor.post('/login', { username: ADMIN_USER, password: ADMIN_PASSWORD, _csrf: await editor.csrfFrom('/admin') })
  t.equal(relogin.headers.location, '/admin', 'logged in again')
  t.equal((await editor.get('/admin')).statusCode, 200, 'the new login works')
  t.equal((await earlier.get('/admin')).headers.location, '/login', 'the cookie from before it does not')
  t.equal(app.sessions.count(), 1, 'one row: the old one was deleted, not left to expire')
})

t.test('an expired session row is refused, even inside the cookie\'s own lifetime, and pruned at the next start', async (t) => {
  const dir = tempDir(t)
  const options = { dataDir: dir, dbPath: join(dir, 'blog.db'), sessionKey: randomBytes(32) }
  const app = await buildBlog(t, redis, options)
  const editor = await admin(app)
  t.equal((await editor.get('/admin')).statusCode, 200)
  // The row's expiry, not the clock: moved to the past, as if the login were older than its lifetime.
  app.db.$client.prepare('UPDATE sessions SET expires_at = ?').run(Date.now() - 1)
  t.equal((await editor.get('/admin')).headers.location, '/login', 'expired: redirected to /login')
  t.notMatch((await editor.get('/')).body, /admin-bar/, 'and anonymous on public pages')
  t.equal(app.sessions.count(), 1, 'the row is still there until pruned')
  await app.close()

  const restarted = await buildBlog(t, redis, options)
  t.equal(restarted.sessions.count(), 0, 'a start prunes expired rows')
  t.equal((await new Visitor(restarted).login()).statusCode, 302, 'and logging in works as before')
})

t.test('the cookie carries only a random session id; the user comes from the database', async (t) => {
  const app = await buildBlog(t, redis)
  const editor = await admin(app)
  await editor.get('/admin') // the first page with a form adds the CSRF secret
  const session = app.decodeSecureSession(editor.cookies.get('blog_session') ?? '')
  t.ok(session, 'the cookie opens with the key')
  t.same(Object.keys(session?.data() ?? {}).sort(), ['_csrf', 'sid'], 'a CSRF secret and a session id, no user')
  t.match(session?.get('sid'), /^[A-Za-z0-9_-]{43}$/)
  // A cookie sealed with the right key but naming a user, as the blog's cookies once did, is nobody's login.
  const forged = new Visitor(app)
  forged.cookies.set('blog_session', app.encodeSecureSession(app.createSecureSession({ user: { id: 1, username: 'admin' } })))
  t.equal((await forged.get('/admin')).headers.location, '/login', 'a user in the cookie is not a login')
  t.match(csrfOf((await editor.get('/admin')).body), /./, 'the real session still works')
})
