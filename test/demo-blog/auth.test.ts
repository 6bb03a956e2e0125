import t from 'tap'
import { redisForTest } from '../helpers/redis.js'
import { admin, ADMIN_PASSWORD, ADMIN_USER, buildBlog, csrfOf, Visitor } from './fixtures/blog.js'

const redis = await redisForTest(t)

t.test('login: the form carries _csrf; success redirects to /admin with an httpOnly, lax session cookie', async (t) => {
  const app = await buildBlog(t, redis)
  const visitor = new Visitor(app)
  const form = await visitor.get('/login')
  t.equal(form.statusCode, 200)
  t.match(form.body, /<input type="hidden" name="_csrf" value="[^"]+">/)
  t.match(form.body, /name="username"/)
  t.match(form.body, /name="password"/)

  const response = await visitor.post('/login', { username: ADMIN_USER, password: ADMIN_PASSWORD, _csrf: csrfOf(form.body) })
  t.equal(response.statusCode, 302)
  t.equal(response.headers.location, '/admin')
  const cookie = String(response.headers['set-cookie'])
  t.match(cookie, /^blog_session=/)
  t.match(cookie, /HttpOnly/)
  t.match(cookie, /SameSite=Lax/)
  t.notMatch(cookie, /Secure/, 'plain http: not Secure')

  const adminPage = await visitor.get('/admin')
  t.equal(adminPage.statusCode, 200)
  t.match(adminPage.body, /Logged in as <strong>admin<\/strong>/)
  t.equal((await visitor.get('/login')).headers.location, '/admin', 'GET /login when logged in goes to /admin')
})

t.test('login with a wrong password or an unknown user fails and opens no session', async (t) => {
  const app = await buildBlog(t, redis)
  for (const [username, password] of [[ADMIN_USER, 'wrong'], ['nobody', ADMIN_PASSWORD], ['', ''], [ADMIN_USER, '']]) {
    const visitor = new Visitor(app)
    const response = await visitor.login(username, password)
    t.equal(response.statusCode, 401, `${username || '(empty)'} / ${password === ADMIN_PASSWORD ? 'the password' : password || '(empty)'}`)
    t.match(response.body, /Wrong username or password/)
    t.match(response.body, /name="_csrf"/, 'the form comes back, ready to retry')
    const adminPage = await visitor.get('/admin')
    t.equal(adminPage.statusCode, 302, 'still not logged in')
    t.equal(adminPage.headers.location, '/login')
  }
  const escaped = await new Visitor(app).login('<script>alert(1)</script>', 'x')
  t.notMatch(escaped.body, /<script>alert/, 'the username is escaped when the form is shown again')
  t.match(escaped.body, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/)
})

t.test('login without a CSRF token, or with a forged one, is a 403 page', async (t) => {
  const app = await buildBlog(t, redis)
  const visitor = new Visitor(app)
  await visitor.get('/login')
  const missing = await visitor.post('/login', { username: ADMIN_USER, password: ADMIN_PASSWORD })
  t.equal(missing.statusCode, 403)
  t.match(missing.body, /Forbidden/)
  const forged = await visitor.post('/login', { username: ADMIN_USER, password: ADMIN_PASSWORD, _csrf: 'forged-token' })
  t.equal(forged.statusCode, 403)
  // A token from another visitor's session is no good either.
  const other = new Visitor(app)
  const foreign = await other.csrfFrom('/login')
  const crossed = await visitor.post('/login', { username: ADMIN_USER, password: ADMIN_PASSWORD, _csrf: foreign })
  t.equal(crossed.statusCode, 403)
  t.equal((await visitor.get('/admin')).statusCode, 302, 'no session was opened')
})

t.test('the login rate limit kicks in', async (t) => {
  const app = await buildBlog(t, redis, { loginRateLimit: { max: 3, timeWindow: 60_000 } })
  const visitor = new Visitor(app)
  const _csrf = await visitor.csrfFrom('/login')
  for (let i = 1; i <= 3; i++) {
    const response = await visitor.post('/login', { username: ADMIN_USER, password: `guess ${i}`, _csrf })
    t.equal(response.statusCode, 401, `attempt ${i} is judged`)
  }
  const limited = await visitor.post('/login', { username: ADMIN_USER, password: ADMIN_PASSWORD, _csrf })
  t.equal(limited.statusCode, 429, 'the fourth attempt is refused, even with the right password')
  t.match(limited.headers['content-type'], /^text\/html/)
  t.match(limited.body, /Too many attempts/)
  t.ok(limited.headers['retry-after'], 'says when to retry')
  t.equal((await visitor.get('/admin')).statusCode, 302, 'and opens no session')
  t.equal((await visitor.get('/login')).statusCode, 200, 'GET /login is not limited')
})

t.test('logged in, pages BYPASS the cache and show the admin bar; anonymous pages never show it', async (t) => {
  const app = await buildBlog(t, redis)
  const reader = new Visitor(app)
  const editor = await admin(app)
  for (const url of ['/', '/about', '/post/1']) {
    const before = await reader.get(url)
    t.equal(before.headers['x-cache'], 'MISS')
    t.notMatch(before.body, /admin-bar/, `anonymous ${url}: no admin bar`)

    const mine = await editor.get(url)
    t.equal(mine.statusCode, 200)
    t.equal(mine.headers['x-cache'], 'BYPASS', `logged-in ${url}: BYPASS`)
    t.match(mine.body, /class="admin-bar"/, `logged-in ${url}: admin bar`)
    t.match(mine.body, /action="\/logout"/, 'with a logout form')
    t.match(mine.body, /name="_csrf" value="[^"]+"/, 'carrying a CSRF token')

    const after = await reader.get(url)
    t.equal(after.headers['x-cache'], 'HIT', `anonymous ${url} is still served from the cache`)
    t.notMatch(after.body, /admin-bar/, `anonymous ${url}: still no admin bar`)
    t.notMatch(after.body, /Logged in as/)
  }
  // The admin first: what it gets must not become what readers get.
  const fresh = await buildBlog(t, redis)
  const firstEditor = await admin(fresh)
  t.equal((await firstEditor.get('/about')).headers['x-cache'], 'BYPASS')
  const anonymous = await new Visitor(fresh).get('/about')
  t.equal(anonymous.headers['x-cache'], 'MISS', 'the admin page was not stored')
  t.notMatch(anonymous.body, /admin-bar/)
})

t.test('login and logout purge the index (view//), like the Flask post', async (t) => {
  const app = await buildBlog(t, redis)
  const reader = new Visitor(app)
  await reader.get('/')
  await reader.get('/?page=1')
  t.ok(await app.cache.has('view//'), 'the index is cached')
  const editor = await admin(app)
  t.notOk(await app.cache.has('view//'), 'login purged it')

  t.equal((await reader.get('/')).headers['x-cache'], 'MISS')
  t.ok(await app.cache.has('view//'))
  const home = await editor.get('/')
  const logout = await editor.post('/logout', { _csrf: csrfOf(home.body) })
  t.equal(logout.statusCode, 302)
  t.equal(logout.headers.location, '/')
  t.notOk(await app.cache.has('view//'), 'logout purged it')
  t.equal((await editor.get('/admin')).statusCode, 302, 'the session is over')
  const after = await editor.get('/')
  t.notMatch(after.body, /admin-bar/, 'the next page has no admin bar')
  t.equal(after.headers['x-cache'], 'MISS', 'and is an anonymous page again')
})

t.test('logout needs a valid CSRF token', async (t) => {
  const app = await buildBlog(t, redis)
  const editor = await admin(app)
  const response = await editor.post('/logout', { _csrf: 'nope' })
  t.equal(response.statusCode, 403)
  t.equal((await editor.get('/admin')).statusCode, 200, 'still logged in')
})

t.test('admin routes without a session redirect to /login', async (t) => {
  const app = await buildBlog(t, redis)
  const reader = new Visitor(app)
  for (const url of ['/admin', '/admin/post/new', '/admin/post/1/edit', '/admin/cache', '/admin/post/999/edit']) {
    const response = await reader.get(url)
    t.equal(response.statusCode, 302, `GET ${url}`)
    t.equal(response.headers.location, '/login')
  }
  for (const url of ['/admin/post', '/admin/post/1/edit', '/admin/post/1/delete', '/admin/cache/purge', '/admin/cache/clear']) {
    const response = await reader.post(url, { title: 'x', body: 'y', key: 'view//' })
    t.equal(response.statusCode, 302, `POST ${url}`)
    t.equal(response.headers.location, '/login')
  }
  t.equal(app.posts.listAll().length, 5, 'nothing was created or deleted')
  t.equal(app.posts.get(1)?.title, '利用Redis做Flask緩存後端', 'nothing was edited')
})

t.test('behind an https proxy (trustProxy), the session cookie is Secure', async (t) => {
  const app = await buildBlog(t, redis, { fastify: { trustProxy: true } })
  const visitor = new Visitor(app)
  const form = await visitor.request({ method: 'GET', url: '/login', headers: { 'x-forwarded-proto': 'https' } })
  t.match(String(form.headers['set-cookie']), /; Secure/)
  const forced = await buildBlog(t, redis, { secureCookie: true })
  t.match(String((await forced.inject('/login')).headers['set-cookie']), /; Secure/, 'or when configured so')
})
