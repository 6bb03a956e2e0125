// No lost writes: two blog instances share one SQLite file (WAL) and one Redis, with L1 and the bus on. Twenty
// admins, each with its own session and CSRF tokens, create and edit posts in parallel on both instances while
// anonymous readers hammer the (cached) index and posts on both. At the end every write is in the database, and the
// next anonymous read of the index and of every post, on either instance, shows the final state.
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import t, { type Test } from 'tap'
import { renderMarkdown } from '../../demo-blog/lib/markdown.js'
import { redisForTest } from '../helpers/redis.js'
import { ADMIN_PASSWORD, ADMIN_USER, tempDir } from '../demo-blog/fixtures/blog.js'
import { Client, csrfIn, indexEntries, unescapeHtml, type Instance } from './fixtures/client.js'
import { blogFleet, BusWatch } from './fixtures/pair.js'
import { childEnv } from '../helpers/child.js'

const WRITERS = 20
const OPS_PER_WRITER = 5
const READERS = 6
const PER_PAGE = 10

const redis = await redisForTest(t)

interface Row { id: number, title: string, body: string, published: number, created_at: number }
interface Expected { title: string, body: string, published: boolean }

/** What the database holds, read through a connection of the test's own (WAL: it never blocks the writers). */
function readRows (dbPath: string): Row[] {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true })
  try {
    return db.prepare('SELECT id, title, body, published, created_at FROM posts').all() as Row[]
  } finally {
    db.close()
  }
}

/** The index as the blog orders it: published posts, newest first, then by id. */
function expectedIndex (rows: Row[]): Row[] {
  return rows.filter((row) => row.published === 1).sort((a, b) => b.created_at - a.created_at || b.id - a.id)
}

interface Fleet {
  instances: Instance[]
  dbPath: string
  /** Resolves once every purge published so far has been read by every instance. */
  settle: () => Promise<void>
}

interface RunReport {
  writes: number
  reads: number
  readErrors: string[]
  writeErrors: string[]
  expected: Map<number, Expected>
}

/** One admin: logs in, creates two posts and edits them three times, each step on the next instance. */
async function writer (fleet: Fleet, w: number, report: RunReport): Promise<void> {
  const client = new Client()
  const nonce = randomUUID().slice(0, 8)
  await client.login(fleet.instances[w % fleet.instances.length] as Instance, ADMIN_USER, ADMIN_PASSWORD)
  const mine: number[] = []
  for (let op = 0; op < OPS_PER_WRITER; op++) {
    const at = fleet.instances[(w + op) % fleet.instances.length] as Instance
    const slot = op % 2
    const title = `w${w}-p${slot}-v${op}-${nonce}`
    const body = `Body of writer ${w}, post ${slot}, version ${op} (${nonce}).`
    // Some posts are drafts, and some published posts are unpublished by a later edit.
    const published = !(op === 1 && w % 3 === 0) && !(op === 3 && w % 2 === 0)
    const form = { title, body, ...(published ? { published: 'on' } : {}) }
    if (op < 2) {
      const page = await client.get(at, '/admin/post/new')
      const response = await client.post(at, '/admin/post', { ...form, _csrf: csrfIn(page.body) })
      if (response.status !== 302) {
        report.writeErrors.push(`writer ${w} create ${op}: ${response.status}`)
        continue
      }
      const list = await client.get(at, '/admin')
      const id = Number(new RegExp(`<a href="/post/(\\d+)">${title}</a>`).exec(list.body)?.[1])
      if (!Number.isInteger(id)) {
        report.writeErrors.push(`writer ${w} create ${op}: not on the admin list`)
        continue
      }
      mine[slot] = id
      report.expected.set(id, { title, body, published })
    } else {
      const id = mine[slot]
      if (id === undefined) continue
      const page = await client.get(at, `/admin/post/${id}/edit`)
      const response = await client.post(at, `/admin/post/${id}/edit`, { ...form, _csrf: csrfIn(page.body) })
      if (response.status !== 302) {
        report.writeErrors.push(`writer ${w} edit ${op} of ${id}: ${response.status}`)
        continue
      }
      report.expected.set(id, { title, body, published })
    }
    report.writes++
  }
}

/** An anonymous reader: the index, its second page and a known post, on each instance in turn, until told to stop. */
async function reader (fleet: Fleet, r: number, report: RunReport, stop: { done: boolean }): Promise<void> {
  const client = new Client()
  for (let i = r; !stop.done; i++) {
    const at = fleet.instances[i % fleet.instances.length] as Instance
    const ids = [1, 2, 3, 4, 5, ...report.expected.keys()]
    for (const url of ['/', '/?page=2', `/post/${ids[i % ids.length] ?? 1}`]) {
      const page = await client.get(at, url)
      report.reads++
      if (page.status !== 200 && page.status !== 404) report.readErrors.push(`${url}: ${page.status}`)
      if (page.setCookies.length > 0) report.readErrors.push(`${url}: an anonymous read set a cookie`)
    }
  }
}

/**
 * Reads the index (every page) and every post anonymously on each instance, and lists what differs from the
 * database. `label` names the moment.
 */
async function staleReads (fleet: Fleet, label: string): Promise<string[]> {
  const rows = readRows(fleet.dbPath)
  const index = expectedIndex(rows)
  const pages = Math.max(1, Math.ceil(index.length / PER_PAGE))
  const problems: string[] = []
  for (const [n, instance] of fleet.instances.entries()) {
    const reader = new Client()
    for (let page = 1; page <= pages; page++) {
      const url = page === 1 ? '/' : `/?page=${page}`
      const response = await reader.get(instance, url)
      const want = index.slice((page - 1) * PER_PAGE, page * PER_PAGE).map((row) => `${row.id} ${row.title}`)
      const got = indexEntries(response.body).map((entry) => `${entry.id} ${entry.title}`)
      if (JSON.stringify(got) !== JSON.stringify(want)) {
        problems.push(`${label}, instance ${n}, ${url} (${response.headers['x-cache']}): ${JSON.stringify(got.filter((x) => !want.includes(x)))} ` +
          `instead of ${JSON.stringify(want.filter((x) => !got.includes(x)))}`)
      }
    }
    for (const row of rows) {
      const response = await reader.get(instance, `/post/${row.id}`)
      const cache = response.headers['x-cache']
      if (row.published !== 1) {
        if (response.status !== 404) problems.push(`${label}, instance ${n}, /post/${row.id} (${cache}): the draft answers ${response.status}`)
        continue
      }
      const title = unescapeHtml(/<h1>([^<]*)/.exec(response.body)?.[1] ?? '').trim()
      if (response.status !== 200 || title !== row.title) {
        problems.push(`${label}, instance ${n}, /post/${row.id} (${cache}): ${response.status} "${title}" instead of "${row.title}"`)
      } else if (!response.body.includes(`<div class="body">${renderMarkdown(row.body)}</div>`)) {
        problems.push(`${label}, instance ${n}, /post/${row.id} (${cache}): an old body`)
      }
    }
  }
  return problems
}

async function run (t: Test, fleet: Fleet): Promise<void> {
  const report: RunReport = { writes: 0, reads: 0, readErrors: [], writeErrors: [], expected: new Map() }
  const stop = { done: false }
  const readers = Array.from({ length: READERS }, async (_, r) => await reader(fleet, r, report, stop))
  await Promise.all(Array.from({ length: WRITERS }, async (_, w) => await writer(fleet, w, report)))
  stop.done = true
  await Promise.all(readers)

  t.same(report.writeErrors, [], 'every write was accepted')
  t.equal(report.writes, WRITERS * OPS_PER_WRITER, `${WRITERS} writers × ${OPS_PER_WRITER} operations`)
  t.same(report.readErrors, [], `${report.reads} anonymous reads during the writes: no error, no cookie`)

  // Every write is in the database, as its writer last left it.
  const rows = new Map(readRows(fleet.dbPath).map((row) => [row.id, row]))
  const lost: string[] = []
  for (const [id, want] of report.expected) {
    const row = rows.get(id)
    if (row === undefined || row.title !== want.title || row.body !== want.body || (row.published === 1) !== want.published) {
      lost.push(`post ${id}: ${JSON.stringify(row && { title: row.title, published: row.published })} instead of ${JSON.stringify(want)}`)
    }
  }
  t.same(lost, [], `${report.expected.size} posts hold their writer's last edit`)
  t.equal(rows.size, 5 + WRITERS * 2, 'the seeded posts and two per writer, nothing more')

  // The very next reads, with nothing waited for. A stale page here that is gone after the bus settles is an L1 copy
  // whose purge was still on its way (see BusWatch); one still there afterwards is a stale page in Redis.
  const immediate = await staleReads(fleet, 'right after the writes')
  if (immediate.length > 0) t.comment(`stale right after the last write's response:\n${immediate.join('\n')}`)
  await fleet.settle()
  t.same(await staleReads(fleet, 'once the bus settled'), [], 'every instance shows the final state, index and posts')
  t.same(immediate, [], 'even the very next read after the last write is fresh')
}

t.test(`two in-process instances, inject: ${WRITERS} writers × ${OPS_PER_WRITER} ops, ${READERS} readers`, async (t) => {
  const apps = await blogFleet(t, redis, 2, { perPage: PER_PAGE })
  const watch = await BusWatch.start(t, redis.url, apps[0]?.cache.prefix as string)
  const dbPath = apps[0]?.db.$client.name as string
  await run(t, { instances: apps, dbPath, settle: async () => await watch.settle(apps) })
})

async function startProcess (env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess, base: string }> {
  const script = fileURLToPath(new URL('./fixtures/blog-server.ts', import.meta.url))
  const child = spawn(process.execPath, ['--import', 'tsx', script], { env: childEnv(env), stdio: ['ignore', 'pipe', 'inherit'] })
  const [chunk] = await once(child.stdout as NodeJS.ReadableStream, 'data') as [Buffer]
  return { child, base: `http://127.0.0.1:${Number(chunk.toString().trim())}` }
}

t.test(`two processes, real HTTP: ${WRITERS} writers × ${OPS_PER_WRITER} ops, ${READERS} readers`, async (t) => {
  const dir = tempDir(t, 'blog-processes-')
  const prefix = `${redis.prefix}processes-${randomUUID().slice(0, 8)}:`
  const env = {
    BLOG_DB: join(dir, 'blog.db'),
    REDIS_URL: redis.url,
    CACHE_PREFIX: prefix,
    SESSION_KEY: randomBytes(32).toString('hex'),
    ADMIN_USER,
    ADMIN_PASSWORD
  }
  const processes: Array<{ child: ChildProcess, base: string }> = []
  t.teardown(async () => {
    for (const { child } of processes) {
      if (child.exitCode !== null) continue
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      await exited
    }
  })
  // One after the other: the first creates, migrates and seeds the database.
  for (let i = 0; i < 2; i++) processes.push(await startProcess(env))
  const watch = await BusWatch.start(t, redis.url, prefix)
  const bases = processes.map((process) => process.base)
  const received = async (): Promise<number> => {
    let sum = 0
    for (const base of bases) sum += ((await (await fetch(base + '/__test/bus')).json()) as { received: number }).received
    return sum
  }
  await run(t, { instances: bases, dbPath: env.BLOG_DB, settle: async () => await watch.settleCounting(bases.length, received) })
})
