// Errors Fastify raises before routing (a malformed %-escape, an over-long path parameter) reach no hook and no error
// handler; without the `frameworkErrors` server option they are Fastify's bare JSON, without the blog's security
// headers. Checked on the tests' instance (buildBlog) and on the one `npm start` creates (demo-blog/server.ts).
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { childEnv } from '../helpers/child.js'
import { freePort, redisForTest } from '../helpers/redis.js'
import { admin, buildBlog, tempDir } from '../demo-blog/fixtures/blog.js'
import { rawRequest } from './fixtures/http.js'

const redis = await redisForTest(t)

const SECURITY_HEADERS = ['content-security-policy', 'x-content-type-options', 'referrer-policy']

const MALFORMED: Array<[string, number, string]> = [
  ['/ab%C0%AFout', 400, 'Bad request'],
  ['/%', 400, 'Bad request'],
  ['/about%ZZ', 400, 'Bad request'],
  ['/post/%E0%A4%A', 400, 'Bad request'],
  ['/admin/post/%C0%AF/edit', 400, 'Bad request'],
  ['/static/%C0%AF', 400, 'Bad request'],
  [`/post/${'1'.repeat(101)}`, 414, 'Address too long']
]

type Headers = Record<string, string | string[] | number | undefined>

/** The checks every malformed URL's answer must pass: the blog's page, with the headers of any other page. */
function checkErrorPage (t: Test, label: string, status: number, headers: Headers, body: string,
  expected: { status: number, title: string, security: Headers }): void {
  t.equal(status, expected.status, `${label}: ${expected.status}`)
  t.equal(headers['content-type'], 'text/html; charset=utf-8', `${label}: HTML`)
  for (const name of SECURITY_HEADERS) t.equal(headers[name], expected.security[name], `${label}: ${name} as on every page`)
  t.match(body, `<title>${expected.title} · fastify-cache blog</title>`, `${label}: the blog's error page`)
  t.match(body, /<header class="site">/, `${label}: inside the layout`)
  t.notMatch(body, /FST_ERR|"statusCode"/, `${label}: not Fastify's JSON`)
}

t.test('the tests\' instance: malformed URLs get the blog\'s HTML error page and security headers, by inject and by raw HTTP', async (t) => {
  const app = await buildBlog(t, redis)
  const security = (await app.inject('/about')).headers
  for (const name of SECURITY_HEADERS) t.ok(security[name], `a normal page has ${name}`)
  const port = Number(new URL(await app.listen({ host: '127.0.0.1', port: 0 })).port)
  const editor = await admin(app)
  for (const [url, status, title] of MALFORMED) {
    const injected = await app.inject(url)
    checkErrorPage(t, `inject ${url}`, injected.statusCode, injected.headers, injected.body, { status, title, security })
    const raw = await rawRequest(port, `GET ${url} HTTP/1.1\r\nHost: localhost`)
    const rawHeaders = Object.fromEntries(Object.entries(raw.headers).map(([name, values]) => [name, values.join(', ')]))
    checkErrorPage(t, `raw ${url}`, raw.status, rawHeaders, raw.body.toString('utf8'), { status, title, security })
    const asAdmin = await editor.get(url)
    t.notMatch(asAdmin.body, /admin-bar|_csrf/, `${url} for a logged-in admin: no session was read, so no admin bar`)
    t.notOk(asAdmin.headers['set-cookie'], `${url}: no cookie set`)
  }
  t.equal((await app.inject('/about')).statusCode, 200, 'the blog still serves pages')
})

t.test('npm start (demo-blog/server.ts) creates its instance with the same option', async (t) => {
  const dir = tempDir(t)
  const script = fileURLToPath(new URL('../../demo-blog/server.ts', import.meta.url))
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    // No Redis answers at this port: the blog runs on its memory store and touches no Redis it did not start.
    env: childEnv({
      PORT: '0',
      HOST: '127.0.0.1',
      BLOG_DB: join(dir, 'blog.db'),
      REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
      SESSION_KEY: randomBytes(32).toString('hex'),
      LOG_LEVEL: 'info'
    }),
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    await exited
  })
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`server.ts exited with ${code} before listening`)))
    createInterface({ input: child.stdout }).on('line', (line) => {
      const match = /"msg":"blog at http:\/\/127\.0\.0\.1:(\d+)/.exec(line)
      if (match !== null) resolve(Number(match[1]))
    })
  })
  const page = await rawRequest(port, 'GET /about HTTP/1.1\r\nHost: localhost')
  t.equal(page.status, 200, 'the blog is up')
  const security = Object.fromEntries(SECURITY_HEADERS.map((name) => [name, page.headers[name]?.join(', ')]))
  for (const [url, status, title] of MALFORMED) {
    const raw = await rawRequest(port, `GET ${url} HTTP/1.1\r\nHost: localhost`)
    const headers = Object.fromEntries(Object.entries(raw.headers).map(([name, values]) => [name, values.join(', ')]))
    checkErrorPage(t, `npm start, ${url}`, raw.status, headers, raw.body.toString('utf8'), { status, title, security })
  }
})
