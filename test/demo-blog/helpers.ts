import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify, {
  type FastifyInstance, type FastifyServerOptions, type InjectOptions, type LightMyRequestResponse as InjectResponse
} from 'fastify'
import blog, { type BlogOptions } from '../../demo-blog/app.js'
import type { TestRedis } from '../helpers/redis.js'

interface Teardown {
  teardown: (fn: () => unknown) => void
}

export const ADMIN_USER = 'admin'
export const ADMIN_PASSWORD = 'correct horse battery staple'

/** A directory under the OS temp dir, removed when the test ends. */
export function tempDir (t: Teardown, name = 'blog-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), name))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

export interface BuildBlogOptions extends Partial<BlogOptions> {
  fastify?: FastifyServerOptions
}

/**
 * The demo blog on the test's Redis, under its own cache prefix, with its own SQLite file; closed when the test
 * ends. Lookups get a generous budget so that a loaded machine does not turn hits into misses.
 */
export async function buildBlog (t: Teardown, redis: TestRedis | undefined, options: BuildBlogOptions = {}): Promise<FastifyInstance> {
  const { fastify: serverOptions, ...blogOptions } = options
  const dir = blogOptions.dataDir ?? tempDir(t)
  const app = Fastify({ logger: false, ...serverOptions })
  t.teardown(async () => await app.close())
  await app.register(blog, {
    dbPath: join(dir, 'blog.db'),
    redisUrl: redis?.url,
    redisProbeMs: 5_000,
    cachePrefix: `${redis?.prefix ?? 'test:'}${randomUUID().slice(0, 8)}:`,
    cacheOptions: { lookupTimeoutMs: 2_000 },
    sessionKey: randomBytes(32),
    adminUser: ADMIN_USER,
    adminPassword: ADMIN_PASSWORD,
    loginRateLimit: { max: 1_000, timeWindow: 60_000 },
    ...blogOptions
  })
  await app.ready()
  return app
}

/** The value of the first hidden `_csrf` field of a page. */
export function csrfOf (html: string): string {
  const match = /name="_csrf" value="([^"]+)"/.exec(html)
  if (match === null) throw new Error('no _csrf field on the page')
  return match[1] as string
}

/** A visitor with a cookie jar, talking to the app through inject. */
export class Visitor {
  readonly cookies = new Map<string, string>()
  readonly #app: FastifyInstance

  constructor (app: FastifyInstance) {
    this.#app = app
  }

  async request (options: InjectOptions): Promise<InjectResponse> {
    const cookie = [...this.cookies].map(([name, value]) => `${name}=${encodeURIComponent(value)}`).join('; ')
    const headers = { ...(options.headers ?? {}) }
    if (cookie !== '') headers.cookie = cookie
    const response = await this.#app.inject({ ...options, headers })
    for (const set of response.cookies as Array<{ name: string, value: string, expires?: Date, maxAge?: number }>) {
      const expired = set.value === '' || (set.expires !== undefined && set.expires.getTime() <= Date.now()) ||
        (set.maxAge !== undefined && set.maxAge <= 0)
      if (expired) this.cookies.delete(set.name)
      else this.cookies.set(set.name, set.value)
    }
    return response
  }

  async get (url: string, headers: Record<string, string> = {}): Promise<InjectResponse> {
    return await this.request({ method: 'GET', url, headers })
  }

  /** Posts an HTML form. */
  async post (url: string, form: Record<string, string | string[]>): Promise<InjectResponse> {
    const body = new URLSearchParams()
    for (const [name, value] of Object.entries(form)) {
      for (const item of Array.isArray(value) ? value : [value]) body.append(name, item)
    }
    return await this.request({
      method: 'POST', url, payload: body.toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' }
    })
  }

  /** Reads the CSRF token from a page, as the browser would submit it. */
  async csrfFrom (url: string): Promise<string> {
    const page = await this.get(url)
    return csrfOf(page.body)
  }

  async login (username = ADMIN_USER, password = ADMIN_PASSWORD): Promise<InjectResponse> {
    const _csrf = await this.csrfFrom('/login')
    return await this.post('/login', { username, password, _csrf })
  }
}

/** A logged-in admin. */
export async function admin (app: FastifyInstance): Promise<Visitor> {
  const visitor = new Visitor(app)
  const response = await visitor.login()
  if (response.statusCode !== 302) throw new Error(`login failed with ${response.statusCode}`)
  return visitor
}
