// The demo blog's own defences: CSRF on every state-changing route, the login rate limit, the session cookie's
// flags, and markdown that cannot carry script. (The dependencies' audit is `npm run audit`, outside the tests.)
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { redisForTest } from '../helpers/redis.js'
import { admin, ADMIN_PASSWORD, ADMIN_USER, buildBlog, csrfOf, Visitor } from '../demo-blog/fixtures/blog.js'
import { chromiumAvailable, CHROMIUM_PATH, HtmlInspector } from './fixtures/browser.js'
import { pageKeys } from './fixtures/store.js'

const redis = await redisForTest(t)
const client = new Redis(redis.url)
t.teardown(async () => { await client.quit() })

/** Every row of the blog's tables, to prove that a refused request changed nothing. */
function snapshot (app: FastifyInstance): string {
  const sqlite = app.db.$client
  return JSON.stringify({
    posts: sqlite.prepare('SELECT * FROM posts ORDER BY id').all(),
    users: sqlite.prepare('SELECT * FROM users ORDER BY id').all()
  })
}

interface RouteInfo { method: string, url: string }

/**
 * Every route of the app, read off `printRoutes()` (a tree: each line is a path segment and its methods, indented four
 * columns per level under its parent).
 */
function routesOf (app: FastifyInstance): RouteInfo[] {
  const routes: RouteInfo[] = []
  const stack: string[] = []
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const match = /^([│ ]*)(?:[├└]── )?(.+?) \(([A-Z, ]+)\)$/.exec(line.replace(/\s+$/, ''))
    if (match === null) continue
    const depth = Math.floor((match[1] as string).length / 4)
    stack.length = depth
    stack.push(match[2] as string)
    for (const method of (match[3] as string).split(', ')) routes.push({ method, url: stack.join('') })
  }
  return routes
}

t.test('CSRF: every state-changing route refuses a request without a valid token, and changes nothing', async (t) => {
  const app = await buildBlog(t, redis)
  const routes = routesOf(app)
  const unsafe = routes.filter((route) => route.method !== 'GET' && route.method !== 'HEAD')
  const names = unsafe.map((route) => `${route.method} ${route.url}`).sort()
  // DESIGN.md's table: a route added later is picked up by printRoutes, and this list says the parse found them all.
  for (const known of ['POST /login', 'POST /logout', 'POST /admin/post', 'POST /admin/post/:id/edit', 'POST /admin/post/:id/delete',
    'POST /admin/cache/purge', 'POST /admin/cache/clear']) {
    t.ok(names.includes(known), `${known} is among the routes found`)
  }
  t.comment(`state-changing routes: ${names.join(', ')}`)

  const target = app.posts.create({ title: 'CSRF target', body: 'Must survive every forged request.', published: true })
  const editor = await admin(app)
  const otherEditor = await admin(app)
  const foreignToken = await otherEditor.csrfFrom('/admin/post/new')
  const reader = new Visitor(app)
  for (const url of ['/', '/about', `/post/${target.id}`]) await reader.get(url)
  const cachedBefore = await pageKeys(client, app.cache.prefix)
  t.equal(cachedBefore.length, 3, 'three pages cached before the attempts')
  const form = { title: 'Forged', body: 'Forged body', published: 'on', key: `view//post/${target.id}`, username: ADMIN_USER, password: ADMIN_PASSWORD }

  const before = snapshot(app)
  for (const route of unsafe) {
    const url = route.url.replace(':id', String(target.id))
    // The login form's visitor is anonymous; every other route is tried by a logged-in admin, past requireUser.
    const visitor = url === '/login' ? new Visitor(app) : editor
    if (url === '/login') await visitor.get('/login')
    const attempts: Array<[string, Record<string, string> | string, string?]> = [
      ['no token', form],
      ['an empty token', { ...form, _csrf: '' }],
      ['a forged token', { ...form, _csrf: 'forged-token' }],
      ['another session\'s token', { ...form, _csrf: foreignToken }],
      ['another session\'s token in a header', form, foreignToken],
      ['a JSON body without a token', JSON.stringify(form)]
    ]
    for (const [label, body, headerToken] of attempts) {
      const json = typeof body === 'string'
      const response = await visitor.request({
        method: route.method as 'POST',
        url,
        headers: {
          'content-type': json ? 'application/json' : 'application/x-www-form-urlencoded',
          ...(headerToken === undefined ? {} : { 'x-csrf-token': headerToken, 'csrf-token': headerToken })
        },
        payload: json ? body : new URLSearchParams(body).toString()
      })
      t.equal(response.statusCode, 403, `${route.method} ${url} with ${label}: 403`)
      t.equal(snapshot(app), before, `${route.method} ${url} with ${label}: the database is unchanged`)
    }
  }
  t.same(await pageKeys(client, app.cache.prefix), cachedBefore, 'no page was purged and nothing was cleared')
  for (const url of ['/', '/about', `/post/${target.id}`]) t.equal((await reader.get(url)).headers['x-cache'], 'HIT', `${url} still cached`)
  t.equal((await editor.get('/admin')).statusCode, 200, 'the admin is still logged in (logout refused)')
  t.equal((await otherEditor.get('/admin')).statusCode, 200)

  // The same routes with the session's own token work: the 403s above came from the token, not from the form.
  const valid = async (url: string, fields: Record<string, string>): Promise<number> => {
    const _csrf = await editor.csrfFrom('/admin/post/new')
    return (await editor.post(url, { ...fields, _csrf })).statusCode
  }
  t.equal(await valid(`/admin/post/${target.id}/edit`, { title: 'Edited', body: 'Edited body', published: 'on' }), 302, 'edit with a token')
  t.equal(await valid('/admin/post', { title: 'Created', body: 'Created body', published: 'on' }), 302, 'create with a token')
  t.equal(await valid('/admin/cache/purge', { key: 'view//' }), 302, 'purge with a token')
  t.equal(await valid('/admin/cache/clear', {}), 302, 'clear with a token')
  t.equal(await valid(`/admin/post/${target.id}/delete`, {}), 302, 'delete with a token')
  t.equal(await valid('/logout', {}), 302, 'logout with a token')
  t.equal((await new Visitor(app).login()).statusCode, 302, 'login with a token')
  t.equal(unsafe.length, 7, 'seven state-changing routes, each refused six ways')
})

t.test('the login rate limit: 5 attempts a minute per client address, whatever the session, token or headers', async (t) => {
  // The blog's own default (buildBlog raises it for the other tests).
  const app = await buildBlog(t, redis, { loginRateLimit: undefined })
  const attacker = new Visitor(app)
  const attempt = async (visitor: Visitor, fields: Record<string, string>, headers: Record<string, string> = {}, remoteAddress?: string) =>
    await visitor.request({
      method: 'POST',
      url: '/login',
      remoteAddress,
      headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams(fields).toString()
    })

  const _csrf = await attacker.csrfFrom('/login')
  const statuses: number[] = []
  // Attempts without a token count too: the limit is taken before the CSRF check.
  statuses.push((await attempt(attacker, { username: ADMIN_USER, password: 'guess' })).statusCode)
  for (let i = 2; i <= 5; i++) statuses.push((await attempt(attacker, { username: ADMIN_USER, password: `guess ${i}`, _csrf })).statusCode)
  t.same(statuses, [403, 401, 401, 401, 401], 'five attempts are judged')
  const limited = await attempt(attacker, { username: ADMIN_USER, password: ADMIN_PASSWORD, _csrf })
  t.equal(limited.statusCode, 429, 'the sixth is refused, even with the right password')
  t.equal((await attacker.get('/admin')).statusCode, 302, 'and opens no session')

  const fresh = new Visitor(app)
  const freshToken = await fresh.csrfFrom('/login')
  t.equal((await attempt(fresh, { username: ADMIN_USER, password: ADMIN_PASSWORD, _csrf: freshToken })).statusCode, 429,
    'a new cookie jar does not reset the limit')
  const spoofs: Array<Record<string, string>> = [{ 'x-forwarded-for': '6.6.6.6' }, { 'x-real-ip': '6.6.6.7' }, { forwarded: 'for=6.6.6.8' }, { 'x-client-ip': '6.6.6.9' }]
  for (const headers of spoofs) {
    const response = await attempt(fresh, { username: ADMIN_USER, password: ADMIN_PASSWORD, _csrf: freshToken }, headers)
    t.equal(response.statusCode, 429, `${Object.keys(headers)[0]} does not pick another bucket without trustProxy`)
  }
  const elsewhere = new Visitor(app)
  const elsewhereToken = await elsewhere.csrfFrom('/login')
  t.equal((await attempt(elsewhere, { username: ADMIN_USER, password: ADMIN_PASSWORD, _csrf: elsewhereToken }, {}, '10.1.2.3')).statusCode, 302,
    'another client address has its own allowance')
  t.equal((await attacker.get('/login')).statusCode, 200, 'GET /login is not limited')

  // Behind a proxy (trustProxy), the limit is per client as the proxy reports it, not one bucket for everyone.
  const proxied = await buildBlog(t, redis, { loginRateLimit: undefined, fastify: { trustProxy: true } })
  const a = new Visitor(proxied)
  const aToken = await a.csrfFrom('/login')
  for (let i = 0; i < 5; i++) await attempt(a, { username: ADMIN_USER, password: 'guess', _csrf: aToken }, { 'x-forwarded-for': '203.0.113.1' })
  t.equal((await attempt(a, { username: ADMIN_USER, password: ADMIN_PASSWORD, _csrf: aToken }, { 'x-forwarded-for': '203.0.113.1' })).statusCode, 429,
    'the proxied client is limited')
  const b = new Visitor(proxied)
  const bToken = await b.csrfFrom('/login')
  t.equal((await attempt(b, { username: ADMIN_USER, password: ADMIN_PASSWORD, _csrf: bToken }, { 'x-forwarded-for': '203.0.113.2' })).statusCode, 302,
    'another client behind the same proxy is not')
})

t.test('the session cookie: HttpOnly, SameSite=Lax, Path=/, host-only, sealed, and Secure exactly when it should be', async (t) => {
  interface Case { name: string, trustProxy: boolean | string, secureCookie?: boolean | 'auto', headers: Record<string, string>, secure: boolean }
  const cases: Case[] = [
    { name: 'plain http', trustProxy: false, headers: {}, secure: false },
    { name: 'a forged x-forwarded-proto without trustProxy', trustProxy: false, headers: { 'x-forwarded-proto': 'https' }, secure: false },
    { name: 'https behind a trusted proxy', trustProxy: true, headers: { 'x-forwarded-proto': 'https' }, secure: true },
    { name: 'https behind a proxy trusted by address', trustProxy: '127.0.0.1', headers: { 'x-forwarded-proto': 'https' }, secure: true },
    { name: 'http behind a trusted proxy', trustProxy: true, headers: { 'x-forwarded-proto': 'http' }, secure: false },
    { name: 'secureCookie: true on plain http', trustProxy: false, secureCookie: true, headers: {}, secure: true },
    { name: 'secureCookie: false behind https', trustProxy: true, secureCookie: false, headers: { 'x-forwarded-proto': 'https' }, secure: false }
  ]
  for (const c of cases) {
    const app = await buildBlog(t, redis, { fastify: { trustProxy: c.trustProxy }, ...(c.secureCookie === undefined ? {} : { secureCookie: c.secureCookie }) })
    const visitor = new Visitor(app)
    const form = await visitor.get('/login', c.headers)
    const login = await visitor.request({
      method: 'POST',
      url: '/login',
      headers: { ...c.headers, 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ username: ADMIN_USER, password: ADMIN_PASSWORD, _csrf: csrfOf(form.body) }).toString()
    })
    t.equal(login.statusCode, 302, `${c.name}: logged in`)
    const home = await visitor.get('/admin', c.headers)
    const logout = await visitor.request({
      method: 'POST',
      url: '/logout',
      headers: { ...c.headers, 'content-type': 'application/x-www-form-urlencoded' },
      payload: `_csrf=${encodeURIComponent(csrfOf(home.body))}`
    })
    for (const [step, response] of [['GET /login', form], ['POST /login', login], ['POST /logout', logout]] as const) {
      const cookies = (response.cookies as Array<{ name: string, value: string, path?: string, httpOnly?: boolean, sameSite?: string, secure?: boolean, domain?: string, expires?: Date }>)
        .filter((cookie) => cookie.name === 'blog_session')
      t.equal(cookies.length, 1, `${c.name}, ${step}: sets blog_session once`)
      const cookie = cookies[0]
      if (cookie === undefined) continue
      t.equal(cookie.httpOnly, true, `${c.name}, ${step}: HttpOnly`)
      t.equal(cookie.sameSite, 'Lax', `${c.name}, ${step}: SameSite=Lax`)
      t.equal(cookie.path, '/', `${c.name}, ${step}: Path=/`)
      t.equal(cookie.domain, undefined, `${c.name}, ${step}: host-only (no Domain)`)
      t.equal(cookie.secure === true, c.secure, `${c.name}, ${step}: Secure ${c.secure}`)
      if (step === 'POST /login') {
        const opened = Buffer.from(cookie.value.split(';')[0] ?? '', 'base64').toString('latin1')
        t.notMatch(opened + cookie.value, /admin|"user"/, `${c.name}: the session is sealed, not readable`)
      }
      if (step === 'POST /logout') t.ok(cookie.value === '' && (cookie.expires?.getTime() ?? 1) <= 0, `${c.name}: logout expires it`)
    }
  }
})

/**
 * Markdown XSS vectors, each written as a post through the admin form. The anonymous page (MISS, then HIT) must
 * carry no executable vector, as judged by a browser's parser and by loading it with scripts on and CSP off.
 */
const XSS_PAYLOADS: Array<[string, string]> = [
  ['script tag', '<script>alert(1)</script>'],
  ['mixed-case script tag', '<ScRiPt>alert(1)</sCrIpT>'],
  ['remote script', '<script src="//evil.example/x.js"></script>'],
  ['markdown link to javascript:', '[click](javascript:alert(1))'],
  ['mixed-case javascript: link', '[click](JaVaScRiPt:alert(1))'],
  ['decimal-entity javascript: link', '[click](&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1))'],
  ['hex-entity javascript: link', '[click](&#x6A;avascript&#x3A;alert(1))'],
  ['named-entity colon', '<a href="javascript&colon;alert(1)">colon</a>'],
  ['tab inside javascript:', '<a href="jav&#x09;ascript:alert(1)">tab</a>'],
  ['newline inside javascript:', '<a href="jav&#x0A;ascript:alert(1)">newline</a>'],
  ['leading control characters', '<a href="&#x01;&#x20;javascript:alert(1)">ctl</a>'],
  ['raw javascript: link', '<a href="javascript:alert(1)">raw</a>'],
  ['angle-bracket markdown link', '[x](<javascript:alert(1)>)'],
  ['reference-style link', '[ref][x]\n\n[x]: javascript:alert(1)'],
  ['autolink', '<javascript:alert(1)>'],
  ['data: link', '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">data</a>'],
  ['markdown data: link', '[x](data:text/html,<script>alert(1)</script>)'],
  ['vbscript: link', '<a href="vbscript:msgbox(1)">vb</a>'],
  ['mixed-case vbscript: link', '[vb](VbScRiPt:msgbox(1))'],
  ['markdown image with javascript:', '![x](javascript:alert(1))'],
  ['markdown image with data:', '![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)'],
  ['img onerror', '<img src=x onerror=alert(1)>'],
  ['img onload on a real image', '<img src="https://example.org/a.png" onload="alert(1)">'],
  ['img src javascript:', '<img src="javascript:alert(1)">'],
  ['svg onload', '<svg onload=alert(1)><circle r=1 /></svg>'],
  ['svg with script', '<svg><script>alert(1)</script></svg>'],
  ['svg xlink:href', '<svg><a xlink:href="javascript:alert(1)"><text y="20">x</text></a></svg>'],
  ['iframe javascript:', '<iframe src="javascript:alert(1)"></iframe>'],
  ['iframe srcdoc', '<iframe srcdoc="<script>alert(1)</script>"></iframe>'],
  ['object', '<object data="javascript:alert(1)"></object>'],
  ['embed', '<embed src="javascript:alert(1)">'],
  ['style element', '<style>@import "//evil.example/x.css"; body { background: url(javascript:alert(1)) }</style>'],
  ['style attribute', '<div style="background:url(javascript:alert(1))">styled</div>'],
  ['form action javascript:', '<form action=javascript:alert(1)><button>go</button></form>'],
  ['button formaction', '<button formaction="javascript:alert(1)">go</button>'],
  ['input autofocus onfocus', '<input autofocus onfocus=alert(1)>'],
  ['details ontoggle', '<details open ontoggle=alert(1)><summary>x</summary></details>'],
  ['body onload', '<body onload=alert(1)>'],
  ['base href', '<base href="javascript:alert(1)//">'],
  ['meta refresh', '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">'],
  ['link stylesheet', '<link rel="stylesheet" href="//evil.example/x.css">'],
  ['HTML comment closing early', '<!--><script>alert(1)</script>-->'],
  ['bogus comment end', '<!-- --!><script>alert(1)</script> -->'],
  ['comment inside a tag name', '<scr<!-- -->ipt>alert(1)</script>'],
  ['conditional comment', '<!--[if gte IE 4]><script>alert(1)</script><![endif]-->'],
  ['attribute breaking out of its quotes', '<a href="https://example.org" title=\'x" onmouseover="alert(1)\'>q</a>'],
  ['unquoted attribute breaking', '<img src=x alt=x" onerror="alert(1)>'],
  ['attribute with a backtick', '<img src=`x` onerror=`alert(1)`>'],
  ['noscript mutation', '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>'],
  ['math mutation', '<math><mtext><table><mglyph><style><img src=x onerror=alert(1)></style></mglyph></table></mtext></math>'],
  ['template', '<template><img src=x onerror=alert(1)></template>'],
  ['html inside a markdown link text', '[<img src=x onerror=alert(1)>](https://example.org)'],
  ['markdown link title breaking out', '[x](https://example.org "a\\" onmouseover=\\"alert(1)")'],
  ['protocol-relative link', '[x](//evil.example/)']
]

t.test(`markdown XSS: ${XSS_PAYLOADS.length} payloads written through the admin form reach readers inert`, async (t) => {
  const app = await buildBlog(t, redis)
  const base = (await app.listen({ host: '127.0.0.1', port: 0 })).replace(/\/$/, '')
  const editor = await admin(app)
  const browser = chromiumAvailable() ? await HtmlInspector.launch() : undefined
  if (browser === undefined) t.comment(`no Chromium at ${CHROMIUM_PATH} (set CHROMIUM_PATH): the browser checks are skipped`)
  else t.teardown(async () => await browser.close())

  // Each payload as a post body, and a few as titles too.
  const created: Array<{ name: string, id: number }> = []
  for (const [i, [name, payload]] of XSS_PAYLOADS.entries()) {
    const _csrf = await editor.csrfFrom('/admin/post/new')
    const title = i % 6 === 0 ? `${payload} (${i})` : `XSS ${i}: ${name}`
    const response = await editor.post('/admin/post', { _csrf, title, body: `Before.\n\n${payload}\n\nAfter.`, published: 'on' })
    t.equal(response.statusCode, 302, `${name}: created`)
    const post = app.posts.listAll().find((row) => row.title === title)
    t.equal(post?.body, `Before.\n\n${payload}\n\nAfter.`, `${name}: stored verbatim`)
    created.push({ name, id: post?.id ?? 0 })
  }

  const problems: string[] = []
  /** Reads a page anonymously twice (the first stores it, the second is the cached copy) and checks both. */
  const check = async (label: string, url: string): Promise<void> => {
    const first = await fetch(base + url)
    const html = await first.text()
    const cached = await fetch(base + url)
    const cachedHtml = await cached.text()
    if (first.status !== 200 || cached.status !== 200) problems.push(`${label}: status ${first.status}, then ${cached.status}`)
    if (cached.headers.get('x-cache') !== 'HIT') problems.push(`${label}: the second read is ${cached.headers.get('x-cache')}, not a HIT`)
    if (cachedHtml !== html) problems.push(`${label}: the cached copy differs from the rendered page`)
    // Plain-text checks on the markup, a second opinion that needs no browser.
    const tags = html.replace(/"[^"]*"/g, '""')
    if (/<script/i.test(html)) problems.push(`${label}: <script in the markup`)
    if (/<[^>]*\son[a-z]+\s*=/i.test(tags)) problems.push(`${label}: an on* attribute in the markup`)
    if (/\s(?:href|src|action|formaction|data)\s*=\s*["']?\s*(?:javascript|vbscript|data):/i.test(html)) problems.push(`${label}: a script URL`)
    if (browser !== undefined) {
      const verdict = await browser.verdict(base + url, cachedHtml)
      problems.push(...verdict.problems.map((problem) => `${label}: ${problem}`))
      problems.push(...verdict.dialogs.map((dialog) => `${label}: a dialog opened (${dialog})`))
      problems.push(...verdict.foreignRequests.map((request) => `${label}: requested ${request}`))
    }
  }
  for (const { name, id } of created) await check(name, `/post/${id}`)
  for (let page = 1; page <= Math.ceil((XSS_PAYLOADS.length + 4) / 10); page++) await check(`index page ${page}`, page === 1 ? '/' : `/?page=${page}`)
  t.same(problems, [], `${XSS_PAYLOADS.length} payloads, each post read twice, and the index: nothing executable`)
  t.ok(XSS_PAYLOADS.length >= 20, 'at least 20 payloads')

  // The checks can see a vector: the same browser flags the raw payloads.
  if (browser !== undefined) {
    const raw = await browser.verdict(base + '/about', `<html><body>${XSS_PAYLOADS.map(([, payload]) => payload).join('\n')}</body></html>`)
    t.ok(raw.problems.length >= XSS_PAYLOADS.length - 12, `unsanitised, the payloads are flagged (${raw.problems.length} problems)`)
  }
})

t.test('helpers: the route tree parser reads nested routes', async (t: Test) => {
  const app = await buildBlog(t, redis)
  const routes = routesOf(app).map((route) => `${route.method} ${route.url}`)
  for (const route of ['GET /', 'GET /about', 'GET /post/:id', 'GET /admin/post/:id/edit', 'POST /admin/post/:id/edit', 'GET /admin/cache']) {
    t.ok(routes.includes(route), route)
  }
})
