// Cache poisoning: whatever an attacker sends on a cold cache (forged host and proxy headers, unkeyed query
// parameters, odd paths), the next visitor gets the very page a clean request renders, byte for byte, with the same
// headers. Through inject and through a real listening server with raw HTTP.
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import type { FastifyInstance, InjectOptions } from 'fastify'
import { redisForTest } from '../helpers/redis.js'
import { admin, buildBlog, csrfOf, Visitor } from '../demo-blog/fixtures/blog.js'
import { comparableHeaders, fetchHeaders, rawRequest } from './fixtures/http.js'
import { gunzipSync } from 'node:zlib'
import { decodePage } from '../../plugin/entry.js'
import { pageKeys, storedBytes, storedKeys } from './fixtures/store.js'

const PUBLIC_URL = 'https://blog.example.org'
const EVIL = 'evil.example'
/** Absolute URLs the templates write on purpose (the footer's link). */
const FIXED_EXTERNAL_URLS = ['https://fastify.dev/']

const redis = await redisForTest(t)
const client = new Redis(redis.url)
t.teardown(async () => { await client.quit() })

/** Pages a victim asks for: the index (both pages), the about page and two posts. */
const TARGETS = ['/', '/?page=2', '/about', '/post/1', '/post/2']

interface Reference {
  status: number
  body: string
  headers: Record<string, string>
}

/** The blog with a public URL and 12 published posts (two index pages). */
async function blog (t: Test, trustProxy: boolean): Promise<FastifyInstance> {
  const app = await buildBlog(t, redis, { publicUrl: PUBLIC_URL, fastify: { trustProxy } })
  for (let i = 1; i <= 8; i++) app.posts.create({ title: `Extra post ${i}`, body: `Body of extra post ${i}.`, published: true })
  return app
}

/** What a clean request renders for each target, computed on a cold cache; the cache is left empty. */
async function referencesOf (t: Test, fetchPage: (url: string) => Promise<Reference & { cache: string | undefined }>): Promise<Map<string, Reference>> {
  const references = new Map<string, Reference>()
  for (const url of TARGETS) {
    const page = await fetchPage(url)
    t.equal(page.status, 200, `reference ${url}: 200`)
    t.equal(page.cache, 'MISS', `reference ${url}: rendered by the handler`)
    references.set(url, { status: page.status, body: page.body, headers: page.headers })
  }
  return references
}

/** The differences between what a victim got and the clean render, as readable lines (empty: identical). */
function differences (label: string, got: Reference, want: Reference): string[] {
  const problems: string[] = []
  if (got.status !== want.status) problems.push(`${label}: status ${got.status}, expected ${want.status}`)
  if (got.body !== want.body) {
    const gotLines = got.body.split('\n')
    const wantLines = want.body.split('\n')
    const at = wantLines.findIndex((line, i) => line !== gotLines[i])
    problems.push(`${label}: body differs at line ${at + 1}: ${JSON.stringify(gotLines[at])} instead of ${JSON.stringify(wantLines[at])}`)
  }
  for (const name of new Set([...Object.keys(got.headers), ...Object.keys(want.headers)])) {
    if (got.headers[name] !== want.headers[name]) {
      problems.push(`${label}: header ${name}: ${JSON.stringify(got.headers[name])} instead of ${JSON.stringify(want.headers[name])}`)
    }
  }
  return problems
}

function injectPage (app: FastifyInstance) {
  return async (url: string): Promise<Reference & { cache: string | undefined }> => {
    const response = await app.inject(url)
    return {
      status: response.statusCode,
      body: response.body,
      headers: comparableHeaders(response.headers),
      cache: response.headers['x-cache'] as string | undefined
    }
  }
}

function fetchPage (base: string) {
  return async (url: string): Promise<Reference & { cache: string | undefined }> => {
    const response = await fetch(base + url, { redirect: 'manual' })
    return {
      status: response.status,
      body: await response.text(),
      headers: comparableHeaders(fetchHeaders(response)),
      cache: response.headers.get('x-cache') ?? undefined
    }
  }
}

/** Forged request headers, each sent alone, then all at once. */
const HEADER_VECTORS: Array<[string, Record<string, string>]> = [
  ['Host', { host: EVIL }],
  ['Host with a port', { host: `${EVIL}:8443` }],
  ['X-Forwarded-Host', { 'x-forwarded-host': EVIL }],
  ['X-Forwarded-Host list', { 'x-forwarded-host': `${EVIL}, blog.example.org` }],
  ['X-Forwarded-Proto https', { 'x-forwarded-proto': 'https' }],
  ['X-Forwarded-Proto junk', { 'x-forwarded-proto': 'javascript' }],
  ['X-Forwarded-Scheme', { 'x-forwarded-scheme': 'https' }],
  ['X-Forwarded-For', { 'x-forwarded-for': '6.6.6.6' }],
  ['X-Forwarded-Port', { 'x-forwarded-port': '1337' }],
  ['X-Forwarded-Prefix', { 'x-forwarded-prefix': '/evil' }],
  ['X-Forwarded-Server', { 'x-forwarded-server': EVIL }],
  ['Forwarded', { forwarded: `for=6.6.6.6;host=${EVIL};proto=https` }],
  ['X-Host', { 'x-host': EVIL }],
  ['X-Original-URL', { 'x-original-url': '/admin' }],
  ['X-Rewrite-URL', { 'x-rewrite-url': '/admin/cache' }],
  ['X-HTTP-Method-Override', { 'x-http-method-override': 'POST' }],
  ['Accept: application/json', { accept: 'application/json' }],
  ['Accept-Language', { 'accept-language': 'fr-CH, fr;q=0.9' }],
  ['Accept-Encoding', { 'accept-encoding': 'gzip, deflate, br' }],
  ['User-Agent with markup', { 'user-agent': '<script>alert(1)</script>' }],
  ['Referer', { referer: `https://${EVIL}/"><script>alert(1)</script>` }],
  ['a garbage session cookie', { cookie: 'blog_session=AAAA;BBBB' }],
  ['another cookie', { cookie: 'theme="><script>alert(1)</script>' }],
  ['If-None-Match: *', { 'if-none-match': '*' }],
  ['If-Modified-Since', { 'if-modified-since': 'Thu, 01 Jan 2099 00:00:00 GMT' }],
  ['Range', { range: 'bytes=0-10' }],
  ['Authorization', { authorization: 'Basic YWRtaW46YWRtaW4=' }],
  ['a form body on GET', { 'content-type': 'application/x-www-form-urlencoded' }]
]
HEADER_VECTORS.push(['all of them at once (but Authorization, which bypasses)',
  Object.assign({}, ...HEADER_VECTORS.filter(([name]) => name !== 'Authorization').map(([, headers]) => headers)) as Record<string, string>])

/** Unkeyed query parameters (and keyed ones in odd spellings), appended to the target. */
const QUERY_VECTORS = [
  'utm=%3Cscript%3Ealert(1)%3C%2Fscript%3E',
  'utm=<script>alert(1)</script>',
  'x=%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E',
  'page=1&x=1',
  'page=2&x=1',
  'PAGE=2',
  'page=1&page=2',
  'page=2&page=1',
  'pag%65=2',
  'page=2%00',
  'page=%2B2',
  'page[]=2',
  'callback=evil',
  '_method=POST',
  '',
  '&&&'
]

/** The target's path written differently: the same page (sharing its key), or a 404 that is never stored. */
const PATH_VECTORS: Array<[string, (path: string) => string]> = [
  ['trailing slash', (path) => path + '/'],
  ['double leading slash', (path) => '/' + path],
  ['upper case', (path) => path.toUpperCase()],
  ['matrix parameter', (path) => path + ';x=1'],
  ['encoded NUL', (path) => path + '%00'],
  ['encoded slash', (path) => path + '%2F'],
  ['dot segment', (path) => path + '/.'],
  ['dot-dot segment', (path) => '/x/..' + path],
  ['encoded digit', (path) => path.replace(/\/(\d)$/, '/%3$1')],
  ['leading zero', (path) => path.replace(/\/(\d)$/, '/0$1')]
]

function withQuery (target: string, query: string): string {
  return target + (target.includes('?') ? '&' : '?') + query
}

/**
 * Everything stored under the key of a visited page is one of the clean renders of that path: an attacker may add a
 * variant (a keyed `?page=+2` is page 2), never a page of its own making.
 */
async function storedPagesAreClean (app: FastifyInstance, references: Map<string, Reference>): Promise<string[]> {
  const problems: string[] = []
  const prefix = app.cache.prefix
  for (const { key, value, field } of await storedBytes(client, prefix)) {
    // The plugin's own bookkeeping fields (version, write times, locks) start with a space.
    if (key.startsWith(prefix + '__') || field?.startsWith(' ') === true) continue
    const path = key.slice(prefix.length + 'view/'.length)
    const clean = [...references].filter(([url]) => url.split('?')[0] === path).map(([, reference]) => reference.body)
    // Keys no visitor's request maps to (`view/*`, absolute-form targets): see the test below.
    if (clean.length === 0) continue
    const page = decodePage(value)
    const body = (page.encoded === undefined ? page.body : gunzipSync(page.encoded.gzip)).toString()
    if (!clean.includes(body)) problems.push(`${key.slice(prefix.length)} holds a page that is no clean render of ${path}`)
  }
  return problems
}

/**
 * For each attack: an empty cache, the attacker's request, then a victim twice (the first may store, the second is
 * served from the cache). Also once with attacker and victim sent together, so that a coalesced victim is checked.
 */
async function attack (
  t: Test, app: FastifyInstance, references: Map<string, Reference>,
  name: string, send: (target: string) => Promise<unknown>, victim: (url: string) => Promise<Reference>
): Promise<void> {
  const problems: string[] = []
  for (const target of TARGETS) {
    const want = references.get(target) as Reference
    await app.cache.clear()
    await send(target)
    problems.push(...differences(`${target} after`, await victim(target), want))
    problems.push(...differences(`${target} twice after`, await victim(target), want))
    problems.push(...await storedPagesAreClean(app, references))

    await app.cache.clear()
    const [, together] = await Promise.all([send(target), victim(target)])
    problems.push(...differences(`${target} sent together with`, together, want))
  }
  t.same(problems, [], `${name}: the victim gets the clean page`)
}

for (const trustProxy of [true, false]) {
  t.test(`inject, trustProxy ${trustProxy}: forged headers, unkeyed queries and odd paths never change what others get`, async (t) => {
    const app = await blog(t, trustProxy)
    const victim = injectPage(app)
    await app.cache.clear()
    const references = await referencesOf(t, victim)
    await app.cache.clear()

    for (const [name, headers] of HEADER_VECTORS) {
      const payload = headers['content-type'] !== undefined ? 'page=2&_csrf=x' : undefined
      await attack(t, app, references, `header ${name}`,
        async (target) => await app.inject({ method: 'GET', url: target, headers, payload } as InjectOptions), victim)
    }
    // HEAD and other methods on a cold cache.
    for (const method of ['HEAD', 'OPTIONS', 'POST', 'PUT', 'DELETE', 'PATCH'] as const) {
      await attack(t, app, references, `method ${method}`, async (target) => await app.inject({ method, url: target }), victim)
    }
    for (const query of QUERY_VECTORS) {
      await attack(t, app, references, `query ?${query}`, async (target) => await app.inject(withQuery(target, query)), victim)
    }
    for (const [name, rewrite] of PATH_VECTORS) {
      await attack(t, app, references, `path ${name}`, async (target) => {
        const [path = '', query] = target.split('?')
        return await app.inject(rewrite(path) + (query === undefined ? '' : '?' + query))
      }, victim)
    }
  })
}

t.test('a real server behind trustProxy, raw HTTP: forged request lines and headers never change what others get', async (t) => {
  const app = await blog(t, true)
  const base = (await app.listen({ host: '127.0.0.1', port: 0 })).replace(/\/$/, '')
  const port = Number(new URL(base).port)
  const victim = fetchPage(base)
  await app.cache.clear()
  const references = await referencesOf(t, victim)
  await app.cache.clear()

  const raw = async (head: string, body = ''): Promise<void> => { await rawRequest(port, head, body) }
  const RAW_VECTORS: Array<[string, (target: string) => Promise<void>]> = [
    ['forged Host', (target) => raw(`GET ${target} HTTP/1.1\nHost: ${EVIL}`)],
    ['two Host headers', (target) => raw(`GET ${target} HTTP/1.1\nHost: ${EVIL}\nHost: 127.0.0.1:${port}`)],
    ['Host, X-Forwarded-Host, -Proto, -Prefix and Forwarded together', (target) => raw(`GET ${target} HTTP/1.1\nHost: ${EVIL}\n` +
      `X-Forwarded-Host: ${EVIL}\nX-Forwarded-Proto: https\nX-Forwarded-Prefix: /evil\nX-Forwarded-Port: 1337\n` +
      `Forwarded: for=6.6.6.6;host=${EVIL};proto=https`)],
    ['X-Original-URL and X-Rewrite-URL', (target) => raw(`GET ${target} HTTP/1.1\nHost: x\nX-Original-URL: /admin\nX-Rewrite-URL: /login`)],
    ['absolute-form target', (target) => raw(`GET http://${EVIL}${target} HTTP/1.1\nHost: ${EVIL}`)],
    ['absolute-form https target', (target) => raw(`GET https://${EVIL}:8443${target} HTTP/1.1\nHost: 127.0.0.1`)],
    ['a fragment in the target', (target) => raw(`GET ${target}#"><script>alert(1)</script> HTTP/1.1\nHost: x`)],
    ['asterisk-form target', () => raw('GET * HTTP/1.1\nHost: x')],
    ['HTTP/1.0 without Host', (target) => raw(`GET ${target} HTTP/1.0`)],
    ['raw markup in the query', (target) => raw(`GET ${withQuery(target, 'utm=<script>alert(1)</script>')} HTTP/1.1\nHost: x`)],
    ['an unkeyed parameter next to page', (target) => raw(`GET ${withQuery(target, 'page=1&x=%3Cscript%3E')} HTTP/1.1\nHost: x`)],
    ['a body on GET', (target) => raw(`GET ${target} HTTP/1.1\nHost: x\nContent-Type: application/x-www-form-urlencoded`, 'page=2')],
    ['a chunked body on GET', (target) => raw(`GET ${target} HTTP/1.1\nHost: x\nTransfer-Encoding: chunked`, '6\r\npage=2\r\n0\r\n\r\n')],
    ['an 8 KB header', (target) => raw(`GET ${target} HTTP/1.1\nHost: x\nX-Padding: ${'a'.repeat(8192)}`)],
    ['HEAD', (target) => raw(`HEAD ${target} HTTP/1.1\nHost: ${EVIL}`)]
  ]
  for (const [name, send] of RAW_VECTORS) await attack(t, app, references, name, send, victim)
})

// `/%61bout` is routed to /about and shares its key (plugin/key.ts normalizePath). Two guards keep it from changing
// what /about's visitors get: the plugin lets a non-canonical spelling read the page but never write it, and the
// layout takes the current page from the route rather than the raw URL.
t.test('an escaped unreserved character in the path does not change the stored page', async (t) => {
  const app = await blog(t, false)
  const victim = injectPage(app)
  const references = await referencesOf(t, victim)
  for (const attackUrl of ['/%61bout', '/abou%74']) {
    await app.cache.clear()
    const attackResponse = await app.inject(attackUrl)
    t.equal(attackResponse.statusCode, 200, `${attackUrl} is routed to /about`)
    t.notMatch(attackResponse.body, /%61|%74/, `${attackUrl}: the raw path is not reflected in the page`)
    const got = await victim('/about')
    t.equal(got.body.replace(' aria-current="page"', ''), (references.get('/about') as Reference).body.replace(' aria-current="page"', ''),
      `/about after ${attackUrl}: nothing but the nav marker can differ`)
    t.same(differences(`/about after ${attackUrl}`, got, references.get('/about') as Reference), [],
      `/about after ${attackUrl}: the victim gets the clean page`)
  }
})

// Fastify routes absolute-form targets, fragments and `*` to ordinary pages. None of them may mint a key of its own
// (`view/http://evil.example/post/1`, `view//post/1#x`, `view/*`): the plugin bypasses the cache for any target that
// is not an origin-form path, so an attacker cannot fill the store with copies that `delete('view//')` would miss.
t.test('odd request targets store nothing outside view/<routed path>', async (t) => {
  const app = await blog(t, true)
  const port = Number(new URL(await app.listen({ host: '127.0.0.1', port: 0 })).port)
  for (const [head, routed] of [
    [`GET http://${EVIL}/post/1 HTTP/1.1\nHost: ${EVIL}`, 'view//post/1'],
    [`GET http://${EVIL}/ HTTP/1.1\nHost: ${EVIL}`, 'view//'],
    ['GET /post/1#x HTTP/1.1\nHost: x', 'view//post/1'],
    ['GET /#1 HTTP/1.1\nHost: x', 'view//'],
    ['GET * HTTP/1.1\nHost: x', 'view//']
  ] as const) {
    await app.cache.clear()
    const response = await rawRequest(port, head)
    const keys = await pageKeys(client, app.cache.prefix)
    t.same(keys.filter((key) => key !== routed), [], `${head.split('\n')[0]} (${response.status}): stored under ${keys.join(', ') || 'nothing'}`)
  }
  // Unbounded copies of the index, which the purge of view// leaves in place.
  await app.cache.clear()
  for (let i = 0; i < 20; i++) await rawRequest(port, `GET /#${i} HTTP/1.1\nHost: x`)
  await app.cache.delete('view//')
  t.same(await pageKeys(client, app.cache.prefix), [], 'delete(view//) leaves no copy of the index')
})

t.test('keys an attacker can name are shown inert on the admin dashboard, and purged from it by their exact name', async (t) => {
  const app = await blog(t, true)
  const port = Number(new URL(await app.listen({ host: '127.0.0.1', port: 0 })).port)
  await app.cache.clear()
  // Raw targets no longer reach keys (see above); a key with markup can still come from the API.
  await rawRequest(port, 'GET /#"><script>alert(1)</script><img/src=x/onerror=alert(2)> HTTP/1.1\nHost: x')
  await rawRequest(port, "GET /about#'><svg/onload=alert(3)> HTTP/1.1\nHost: x")
  await app.cache.set("view//about'><svg/onload=alert(3)>", 'value', 60)
  // Whatever the key scheme, any key can carry markup (memoize names, wrap keys, custom route keys).
  await app.cache.set('note/"><script>alert(4)</script>', 'value', 60)
  const keys = await pageKeys(client, app.cache.prefix)
  t.ok(keys.filter((key) => key.includes('<')).length >= 1, `keys carry markup: ${keys.join(', ')}`)
  const editor = await admin(app)
  const dashboard = await editor.get('/admin/cache')
  t.equal(dashboard.statusCode, 200, 'the dashboard answers')
  const tableAt = dashboard.body.indexOf('<table class="list" id="keys">')
  t.ok(tableAt >= 0, 'the dashboard has its keys table')
  // The keys table's own end: the latency table may come before it.
  const table = dashboard.body.slice(tableAt, dashboard.body.indexOf('</table>', tableAt))
  t.notMatch(table, /<script|<img|<svg|\sonerror=|\sonload=/i, 'no markup from a key is live on the dashboard')
  for (const key of keys.filter((key) => key.includes('<'))) {
    t.match(table, key.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;'),
      `${JSON.stringify(key)} is listed, escaped`)
    const purge = await editor.post('/admin/cache/purge', { _csrf: csrfOf(dashboard.body), key })
    t.equal(purge.statusCode, 302, 'its purge button works')
  }
  t.same((await pageKeys(client, app.cache.prefix)).filter((key) => key.includes('<')), [], 'and the purge buttons remove them')
})

t.test('absolute URLs come from publicUrl, never from the request; redirects are relative', async (t) => {
  const app = await blog(t, true)
  const port = Number(new URL(await app.listen({ host: '127.0.0.1', port: 0 })).port)
  const forged = `Host: ${EVIL}\nX-Forwarded-Host: ${EVIL}\nX-Forwarded-Proto: http\nX-Forwarded-Prefix: /evil\n` +
    `Forwarded: host=${EVIL};proto=http\nX-Original-URL: //${EVIL}/`
  // Every URL-bearing attribute whose value is absolute (a scheme, or a scheme-relative //host).
  const absoluteUrls = (html: string): string[] => [...html.matchAll(/\s(?:href|src|action|formaction|content|poster|srcset)\s*=\s*"([^"]*)"/gi)]
    .map((m) => m[1] as string).filter((url) => /^\s*(?:[a-z][a-z0-9+.-]*:|\/\/|\\\\)/i.test(url))

  const pages = ['/', '/?page=2', '/about', '/post/1', '/login', '/post/999', '/nowhere', '/admin', '/static/style.css']
  for (const url of pages) {
    for (const pass of ['cold', 'cached']) {
      const response = await rawRequest(port, `GET ${url} HTTP/1.1\n${forged}`)
      const body = response.body.toString()
      const found = absoluteUrls(body).filter((found) => !found.startsWith(PUBLIC_URL + '/') && !FIXED_EXTERNAL_URLS.includes(found))
      t.same(found, [], `${url} (${pass}, ${response.status}): absolute URLs only from publicUrl`)
      t.notMatch(body, EVIL, `${url} (${pass}): the forged host is nowhere in the page`)
      for (const name of ['location', 'content-location', 'link', 'refresh']) {
        for (const value of response.headers[name] ?? []) {
          t.ok(value.startsWith('/') && !value.startsWith('//'), `${url}: ${name} ${value} is a path`)
        }
      }
    }
  }
  const canonical = (await rawRequest(port, `GET /post/1 HTTP/1.1\n${forged}`)).body.toString()
  t.match(canonical, `<link rel="canonical" href="${PUBLIC_URL}/post/1">`, 'the canonical link of a post')
  const index2 = (await rawRequest(port, `GET /?page=2 HTTP/1.1\n${forged}`)).body.toString()
  t.match(index2, `<link rel="canonical" href="${PUBLIC_URL}/?page=2">`, 'the canonical link of page 2')

  // The redirects of the login flow, with the same forged headers (inject, for the cookie jar).
  const visitor = new Visitor(app)
  const headers = { host: EVIL, 'x-forwarded-host': EVIL, 'x-forwarded-proto': 'https', forwarded: `host=${EVIL}` }
  const form = await visitor.get('/login', headers)
  const login = await visitor.request({
    method: 'POST',
    url: '/login',
    headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ username: 'admin', password: 'correct horse battery staple', _csrf: csrfOf(form.body) }).toString()
  })
  t.equal(login.statusCode, 302)
  t.equal(login.headers.location, '/admin', 'login redirects to a path')
  const adminPage = await visitor.get('/admin', headers)
  t.notMatch(adminPage.body, EVIL, 'the admin pages do not reflect the host either')
  const logout = await visitor.request({
    method: 'POST',
    url: '/logout',
    headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' },
    payload: `_csrf=${encodeURIComponent(csrfOf(adminPage.body))}`
  })
  t.equal(logout.headers.location, '/', 'logout redirects to a path')
  t.equal((await app.inject({ url: '/admin', headers })).headers.location, '/login', 'the login redirect is a path')
})

t.test('the blog keys pages as README\'s "Keys" section says', async (t) => {
  const app = await blog(t, true)
  const prefix = app.cache.prefix
  const fields = async (key: string): Promise<string[]> =>
    (await storedKeys(client, prefix)).find((entry) => entry.key === prefix + key)?.fields ?? []

  // `view/<path>`, the index is `view//`, the prefix in front in the store.
  for (const url of ['/', '/about', '/post/1']) t.equal((await app.inject(url)).headers['x-cache'], 'MISS', `${url} stored`)
  t.same(await pageKeys(client, prefix), ['view//', 'view//about', 'view//post/1'], 'keys are <prefix>view/<path>')

  // Escapes of unreserved characters are decoded: /post/%31 reads view//post/1, but only /post/1 writes it.
  await app.cache.clear()
  t.equal((await app.inject('/post/%31')).headers['x-cache'], 'BYPASS', 'another spelling does not write')
  t.equal((await app.inject('/post/1')).headers['x-cache'], 'MISS')
  t.equal((await app.inject('/post/%31')).headers['x-cache'], 'HIT', '/post/%31 and /post/1 share view//post/1')

  // Query strings: not keyed on /about, so a query bypasses and stores nothing.
  await app.cache.clear()
  t.equal((await app.inject('/about?x=1')).headers['x-cache'], 'BYPASS', 'a query on an unkeyed route bypasses')
  t.same(await pageKeys(client, prefix), [], 'and stores nothing')
  // The index keys only `page`: other parameters read the page variant but never write it.
  t.equal((await app.inject('/?page=2&utm=x')).headers['x-cache'], 'BYPASS', 'an unkeyed parameter on a cold variant: not stored')
  t.same(await pageKeys(client, prefix), [])
  t.equal((await app.inject('/?page=2')).headers['x-cache'], 'MISS')
  t.equal((await app.inject('/?utm=x&page=2')).headers['x-cache'], 'HIT', 'it may be served the page=2 variant')
  t.equal((await app.inject('/')).headers['x-cache'], 'MISS')
  t.equal((await fields('view//')).length, 2, 'variants are fields of one hash: the plain page and page=2')

  // Headers are never keyed (the blog names no `vary`): forged ones are served the one variant, and add none.
  for (const [name, headers] of HEADER_VECTORS.filter(([name]) => name !== 'Authorization')) {
    const response = await app.inject({ url: '/about', headers })
    t.ok(['MISS', 'HIT'].includes(response.headers['x-cache'] as string), `${name}: ${response.headers['x-cache']}`)
  }
  t.equal((await fields('view//about')).length, 1, 'one variant of /about, whatever the headers')
  t.equal((await app.inject({ url: '/about', headers: { authorization: 'Basic eDp5' } })).headers['x-cache'], 'BYPASS',
    'a request with authorization bypasses')

  // The method is not keyed: HEAD reads the GET entry, and never writes one.
  await app.cache.clear()
  const coldHead = await app.inject({ method: 'HEAD', url: '/about' })
  t.equal(coldHead.statusCode, 200)
  t.same(await pageKeys(client, prefix), [], 'HEAD on a cold page stores nothing')
  await app.inject('/about')
  const head = await app.inject({ method: 'HEAD', url: '/about' })
  t.equal(head.headers['x-cache'], 'HIT', 'HEAD is served from the GET entry')

  // delete('view//') removes every variant at once.
  await app.inject('/?page=2')
  await app.inject('/')
  t.equal((await fields('view//')).length, 2)
  await app.cache.delete('view//')
  t.same(await fields('view//'), [], 'delete(view//) removed both variants')
  t.equal((await app.inject('/?page=2')).headers['x-cache'], 'MISS')

  // An admin's pages never enter the key space at all.
  await app.cache.clear()
  const editor = await admin(app)
  for (const url of TARGETS) t.equal((await editor.get(url)).headers['x-cache'], 'BYPASS')
  t.same(await pageKeys(client, prefix), [], 'logged-in pages are not stored under any key')
})
