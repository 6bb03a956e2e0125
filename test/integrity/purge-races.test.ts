// A render in progress on one instance while another instance commits a change and purges: whatever the timing, the
// page rendered from the old data must not be stored after the purge (README, "Purges win over slow renders").
// Deterministic: the render is held between the handler (which has read the data) and the cache's onSend.
import { randomBytes, randomUUID } from 'node:crypto'
import { join } from 'node:path'
import fastifyRedis from '@fastify/redis'
import Fastify, { type FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import blog from '../../demo-blog/app.js'
import fastifyCache from '../../plugin/index.js'
import { ADMIN_PASSWORD, ADMIN_USER, tempDir } from '../demo-blog/fixtures/blog.js'
import { redisForTest } from '../helpers/redis.js'
import { Client, csrfIn } from './fixtures/client.js'
import { BusWatch } from './fixtures/pair.js'

const redis = await redisForTest(t)

/** A request carrying this header waits in onSend (after the handler, before the cache stores it) until released. */
const HOLD_HEADER = 'x-test-hold'

interface Held {
  /** Resolves once a held request has reached the hold. */
  reached: Promise<void>
  release: () => void
}

/** Two blog instances on one database and one prefix; the first can hold a reader's response. */
async function twoInstances (t: Test): Promise<{ apps: [FastifyInstance, FastifyInstance], hold: () => Held }> {
  const dir = tempDir(t, 'blog-race-')
  const options = {
    dbPath: join(dir, 'blog.db'),
    redisUrl: redis.url,
    redisProbeMs: 5_000,
    cachePrefix: `${redis.prefix}race-${randomUUID().slice(0, 8)}:`,
    cacheOptions: { lookupTimeoutMs: 2_000 },
    sessionKey: randomBytes(32),
    adminUser: ADMIN_USER,
    adminPassword: ADMIN_PASSWORD,
    loginRateLimit: { max: 1_000, timeWindow: 60_000 }
  }
  let current: { reach: () => void, released: Promise<void> } | undefined
  const apps: FastifyInstance[] = []
  for (let i = 0; i < 2; i++) {
    const app = Fastify({ logger: false })
    t.teardown(async () => await app.close())
    // Added before the blog, so its routes inherit it; app-level onSend hooks run before the cache's route-level one.
    if (i === 0) {
      app.addHook('onSend', async (request, _reply, payload) => {
        if (request.headers[HOLD_HEADER] !== undefined && current !== undefined) {
          current.reach()
          await current.released
        }
        return payload
      })
    }
    await app.register(blog, options)
    await app.ready()
    apps.push(app)
  }
  const hold = (): Held => {
    let reach!: () => void
    let release!: () => void
    const reached = new Promise<void>((resolve) => { reach = resolve })
    const released = new Promise<void>((resolve) => { release = resolve })
    current = { reach, released }
    return { reached, release }
  }
  return { apps: apps as [FastifyInstance, FastifyInstance], hold }
}

// The blog purges the index (a delete) before the post's tag, and every bus message makes the receiving instance
// drop responses still being computed: so the held render below is not stored, once the first message has arrived.
t.test('the blog: an edit on instance B while instance A renders the post from the old row', async (t) => {
  const { apps: [a, b], hold } = await twoInstances(t)
  const watch = await BusWatch.start(t, redis.url, a.cache.prefix)
  const editor = new Client()
  await editor.login(b, ADMIN_USER, ADMIN_PASSWORD)
  const create = async (title: string): Promise<number> => {
    await editor.post(b, '/admin/post', { _csrf: csrfIn((await editor.get(b, '/admin/post/new')).body), title, body: 'Old body.', published: 'on' })
    return b.posts.listAll().find((post) => post.title === title)?.id ?? 0
  }
  const edit = async (id: number, title: string): Promise<void> => {
    const page = await editor.get(b, `/admin/post/${id}/edit`)
    const response = await editor.post(b, `/admin/post/${id}/edit`, { _csrf: csrfIn(page.body), title, body: 'New body.', published: 'on' })
    t.equal(response.status, 302, 'the edit is saved')
  }

  for (const [label, warm] of [['a post never cached yet', false], ['a post cached, then purged once', true]] as const) {
    const id = await create(`Old title ${label}`)
    if (warm) {
      await a.inject(`/post/${id}`)
      await edit(id, `Old title ${label}`) // purged, but the row keeps the old title
      await watch.settle([a, b])
    }
    // A reads the old row and is held before its response is stored; B commits the edit and purges meanwhile.
    const held = hold()
    const reading = a.inject({ url: `/post/${id}`, headers: { [HOLD_HEADER]: '1' } })
    await held.reached
    await edit(id, `New title ${label}`)
    held.release()
    const first = await reading
    t.match(first.body, 'Old title', `${label}: the held reader got the old page (it started before the edit)`)
    await watch.settle([a, b])

    for (const [name, app] of [['A', a], ['B', b]] as const) {
      const next = await app.inject(`/post/${id}`)
      t.match(next.body, `New title ${label}`, `${label}: the next reader of ${name} gets the new title (${next.headers['x-cache']})`)
    }
    await a.cache.delete(`view//post/${id}`)
  }
})

/**
 * The plugin alone, on two instances with L1 and the bus: a page tagged `t`, rendered on A from data read before B
 * changes the data and purges. The render is released the moment B's purge resolves, before A has read the bus
 * message (as happens whenever A's render ends within the bus's delivery delay).
 */
async function renderDuringPurge (t: Test, purge: (b: FastifyInstance) => Promise<unknown>): Promise<{ held: string, a: string, b: string }> {
  const prefix = `${redis.prefix}plugin-race-${randomUUID().slice(0, 8)}:`
  let data = 'old'
  let release: (() => void) | undefined
  let reached!: () => void
  const renderStarted = new Promise<void>((resolve) => { reached = resolve })
  const apps: FastifyInstance[] = []
  for (let i = 0; i < 2; i++) {
    const app = Fastify({ logger: false })
    t.teardown(async () => await app.close())
    await app.register(fastifyRedis, { url: redis.url })
    await app.register(fastifyCache, { prefix, l1: true, bus: true, lookupTimeoutMs: 2_000 })
    app.get('/page', { config: { cache: { ttl: 600, tags: ['t'] } } }, async (_request, reply) => {
      const seen = data
      if (i === 0 && release === undefined) {
        await new Promise<void>((resolve) => {
          release = resolve
          reached()
        })
      }
      return await reply.type('text/plain').send(seen)
    })
    await app.ready()
    apps.push(app)
  }
  const [a, b] = apps as [FastifyInstance, FastifyInstance]
  const watch = await BusWatch.start(t, redis.url, prefix)
  const rendering = a.inject('/page')
  await renderStarted
  data = 'new'
  await purge(b)
  release?.()
  const held = (await rendering).body
  await watch.settle([a, b])
  return { held, a: (await a.inject('/page')).body, b: (await b.inject('/page')).body }
}

t.test('the plugin: delete() keeps a render that started before it out of the store, on every instance', async (t) => {
  const result = await renderDuringPurge(t, async (b) => await b.cache.delete('view//page'))
  t.equal(result.held, 'old', 'the render in progress answered its own request with what it read')
  t.equal(result.a, 'new', 'then A computes the page again')
  t.equal(result.b, 'new', 'and B too: the old page was refused by the tombstone')
})

// invalidateTags tombstones only the keys found in the tag index at that moment, so a render in progress on another
// instance is caught otherwise: the tag index's tombstone carries the store's time of the purge, and a render that
// began before it may not add itself to the index (and its page is taken back out).
t.test('the plugin: invalidateTags() keeps a render that started before it out of the store, on every instance', async (t) => {
  const result = await renderDuringPurge(t, async (b) => await b.cache.invalidateTags(['t']))
  t.equal(result.held, 'old', 'the render in progress answered its own request with what it read')
  t.equal(result.a, 'new', 'then A computes the page again')
  t.equal(result.b, 'new', 'and B too: the tag purge, stamped with the store\'s clock, refused the old render')
})
