// `npm run bench [-- --quick] [--profile=<server,…>] [--only=<case,…>] [--strict]`: fastify-cache against the limits of
// its own stack. Every figure that matters is a ratio of two cases measured in the same run: the median, over
// alternating rounds, of the per-round ratios. Each server runs in its own child process (bench/server.ts); this
// process drives the load (autocannon, then wrk when installed) and never serves anything. See bench/README.md.
import { fork, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { Agent, request as httpRequest, type OutgoingHttpHeaders } from 'node:http'
import { cpus, loadavg, platform, release, tmpdir, totalmem } from 'node:os'
import { dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { brotliDecompressSync, gunzipSync } from 'node:zlib'
import autocannon from 'autocannon'
import cliProgress from 'cli-progress'
import { Redis } from 'ioredis'
import { startRedis, type TestRedis } from '../test/helpers/redis.js'
import { LARGE_PAGE_BUFFER, PAGE_BUFFER } from './page.js'
import { formatProfile, summarizeProfile, type ProfileSummary } from './profile.js'
import type { ServerCase, ServerCommand, ServerMessage, ServerStats } from './protocol.js'
import {
  codingBytesTable, codingGoalHolds, svgChart, textTable, type CaseSummary, type CodingBytes, type Comparison, type RedisBytes,
  type StampedeSummary, type Verdict
} from './report.js'
import { wrkAvailable, wrkLoad, type WrkResult } from './wrk.js'

const HERE = dirname(fileURLToPath(import.meta.url))
const CONNECTIONS = 50
const STAMPEDE_CONCURRENCY = 500
const STAMPEDE_HANDLER_MS = 100
/** Refresh-ahead case: a page of this ttl, computed in this long, loaded this long at least per round (a few expiries). */
const AHEAD_TTL_S = 2
const AHEAD_HANDLER_MS = 100
const AHEAD_MIN_DURATION_S = 4
const AHEAD_WARMUP_S = 1
/** The spike, as the slowest request of a round: without refresh-ahead ÷ with it. */
const AHEAD_MIN_MAX_RATIO = 2
/** A request of the refresh-ahead case this slow waited on a handler run (half the handler's time). */
const AHEAD_SLOW_MS = AHEAD_HANDLER_MS / 2

// ---------------------------------------------------------------------------------------------------------------
// Settings

interface Settings {
  quick: boolean
  rounds: number
  durationS: number
  warmupS: number
  stampedeRounds: number
  profile: Set<string>
  only: Set<string> | undefined
  strict: boolean
  /** Each round measured by wrk too (unless --no-wrk, or wrk is not installed). */
  wrk: boolean
}

function parseArgs (argv: string[]): Settings {
  const quick = argv.includes('--quick')
  const value = (name: string): string | undefined => {
    const at = argv.findIndex((arg) => arg === `--${name}` || arg.startsWith(`--${name}=`))
    if (at === -1) return undefined
    const arg = argv[at] as string
    return arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : argv[at + 1]
  }
  const list = (name: string): Set<string> | undefined => {
    const text = value(name)
    return text === undefined ? undefined : new Set(text.split(',').map((s) => s.trim()).filter((s) => s !== ''))
  }
  const number = (name: string, fallback: number, integer = true): number => {
    const text = value(name)
    const n = text === undefined ? fallback : Number(text)
    if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < 1) {
      throw new Error(`--${name} expects a ${integer ? 'whole ' : ''}number >= 1, got ${String(text)}`)
    }
    return n
  }
  const rounds = number('rounds', quick ? 3 : 6)
  if (rounds < 3) throw new Error('--rounds must be at least 3: every figure is a median of rounds')
  return {
    quick,
    rounds,
    durationS: number('duration', quick ? 1 : 4, false),
    warmupS: number('warmup', quick ? 1 : 2, false),
    stampedeRounds: number('stampede-rounds', 3),
    profile: list('profile') ?? new Set(),
    only: list('only'),
    strict: argv.includes('--strict'),
    wrk: !argv.includes('--no-wrk') && wrkAvailable()
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Cases and targets

interface LoadCase {
  id: string
  label: string
  server: ServerCase
  path: string
  /** Every request a new query string: a cold key each time. */
  uniqueQuery?: boolean
  /** The x-cache header a measured response must carry (null: none). */
  xCache: 'HIT' | 'MISS' | null
  /** Whether the body must be the shared 4 KB page (or `expected`). */
  page: boolean
  /** Request headers of the load and of the check (a client's accept-encoding). */
  headers?: Record<string, string>
  /** The page the body must be once decoded, when it is not the 4 KB one. */
  expected?: Buffer
  /** The content-encoding the responses must carry; undefined: none. */
  encoding?: 'br' | 'gzip'
}

const LOAD_CASES: LoadCase[] = [
  { id: 'constant', label: '1  constant route (hit ceiling)', server: 'constant', path: '/page', xCache: null, page: true },
  { id: 'ioredis', label: '2  bare ioredis GET route', server: 'ioredis', path: '/page', xCache: null, page: true },
  { id: 'plugin-hit', label: '3  plugin Redis hit', server: 'plugin-hit', path: '/page', xCache: 'HIT', page: true },
  { id: 'plugin-l1', label: '4  plugin L1 hit', server: 'plugin-l1', path: '/page', xCache: 'HIT', page: true },
  { id: 'acd', label: '4b async-cache-dedupe (Redis)', server: 'acd', path: '/page', xCache: null, page: true },
  { id: 'bento', label: '4b bentocache getOrSet (L1+L2)', server: 'bento', path: '/page', xCache: null, page: true },
  { id: 'miss-plugin', label: '5  miss + write (plugin)', server: 'miss-plugin', path: '/miss', uniqueQuery: true, xCache: 'MISS', page: true },
  { id: 'miss-process', label: "5  same, singleFlight 'process'", server: 'miss-process', path: '/miss', uniqueQuery: true, xCache: 'MISS', page: true },
  { id: 'miss-ioredis', label: '5  bare HGET + HSET route', server: 'miss-ioredis', path: '/miss', uniqueQuery: true, xCache: null, page: true },
  { id: 'miss-bare', label: '5  same route, no plugin', server: 'miss-bare', path: '/miss', uniqueQuery: true, xCache: null, page: true },
  { id: 'blog-cached', label: '6  blog index, cached', server: 'blog-cached', path: '/', xCache: 'HIT', page: false },
  { id: 'blog-uncached', label: '6  blog index, uncached', server: 'blog-uncached', path: '/', xCache: null, page: false },
  { id: 'blog-size-l1', label: "6  plugin L1 hit, the index's size", server: 'blog-size-l1', path: '/', xCache: 'HIT', page: false },
  // Content codings on the 50 KB page, for a client that accepts br (case 8).
  { id: 'coding-hit-br', label: '8  plugin Redis hit, 50 KB, br', server: 'coding-hit-br', path: '/large', headers: { 'accept-encoding': 'br' }, xCache: 'HIT', page: true, expected: LARGE_PAGE_BUFFER, encoding: 'br' },
  { id: 'coding-compress-br', label: '8  @fastify/compress, 50 KB, br', server: 'coding-compress-br', path: '/large', headers: { 'accept-encoding': 'br' }, xCache: null, page: true, expected: LARGE_PAGE_BUFFER, encoding: 'br' },
  // A miss answers with the handler's identity bytes whatever the client accepts; the codings are made for the store.
  { id: 'coding-miss', label: '8  miss + write, 50 KB, br+gzip', server: 'coding-miss', path: '/miss', uniqueQuery: true, headers: { 'accept-encoding': 'br' }, xCache: 'MISS', page: true, expected: LARGE_PAGE_BUFFER },
  { id: 'coding-miss-identity', label: '8  same, compressAbove: false', server: 'coding-miss-identity', path: '/miss', uniqueQuery: true, headers: { 'accept-encoding': 'br' }, xCache: 'MISS', page: true, expected: LARGE_PAGE_BUFFER }
]

interface ComparisonSpec {
  caseId: string
  vsId: string
  /** Undefined: shown for information (the case against its ceiling), no verdict. */
  min?: number
}

const COMPARISONS: ComparisonSpec[] = [
  { caseId: 'ioredis', vsId: 'constant' },
  { caseId: 'plugin-hit', vsId: 'ioredis', min: 1.0 },
  { caseId: 'plugin-hit', vsId: 'acd', min: 1.0 },
  { caseId: 'plugin-l1', vsId: 'constant', min: 0.95 },
  { caseId: 'plugin-l1', vsId: 'bento', min: 1.5 },
  { caseId: 'acd', vsId: 'ioredis' },
  { caseId: 'bento', vsId: 'constant' },
  // Issue 12's target is against the Redis floor of a miss; against no cache at all, it is shown for information.
  { caseId: 'miss-plugin', vsId: 'miss-ioredis', min: 0.80 },
  { caseId: 'miss-plugin', vsId: 'miss-bare' },
  { caseId: 'miss-process', vsId: 'miss-plugin' },
  { caseId: 'miss-ioredis', vsId: 'miss-bare' },
  { caseId: 'miss-bare', vsId: 'constant' },
  { caseId: 'blog-cached', vsId: 'blog-uncached', min: 5 },
  // The blog's own hooks (session, CSRF, security headers) on top of the plugin's plain L1 hit of the same bytes.
  { caseId: 'blog-cached', vsId: 'blog-size-l1', min: 0.85 },
  { caseId: 'blog-cached', vsId: 'constant' },
  { caseId: 'blog-uncached', vsId: 'constant' },
  // Codings stored once per miss against compressing every response, for the same br client (issue 15).
  { caseId: 'coding-hit-br', vsId: 'coding-compress-br', min: 5 },
  // What compression costs a miss: br and gzip made once per miss, against storing the identity bytes.
  { caseId: 'coding-miss', vsId: 'coding-miss-identity' }
]

const SHORT_LABELS: Record<string, string> = {
  constant: 'constant (1)',
  ioredis: 'bare ioredis GET (2)',
  'plugin-hit': 'plugin Redis hit (3)',
  acd: 'async-cache-dedupe (4b)',
  bento: 'bentocache (4b)',
  'miss-bare': 'no plugin (5)',
  'miss-plugin': 'miss, fleet lock (5)',
  'miss-ioredis': 'HGET + HSET floor (5)',
  'blog-uncached': 'blog uncached (6)',
  'blog-size-l1': "plugin L1, index's size (6)",
  'coding-compress-br': '@fastify/compress br (8)',
  'coding-miss-identity': 'miss, identity only (8)'
}

// ---------------------------------------------------------------------------------------------------------------
// Servers

class BenchServer {
  readonly name: ServerCase
  readonly port: number
  readonly profileDir: string | undefined
  private readonly child: ChildProcess
  private nextId = 1
  private readonly pending = new Map<number, (value: unknown) => void>()

  private constructor (name: ServerCase, child: ChildProcess, port: number, profileDir: string | undefined) {
    this.name = name
    this.child = child
    this.port = port
    this.profileDir = profileDir
    child.on('message', (message: ServerMessage) => {
      if (message.type !== 'reply') return
      this.pending.get(message.id)?.(message.value)
      this.pending.delete(message.id)
    })
  }

  /** The server, or why its case cannot run against this version of the plugin. */
  static async start (name: ServerCase, env: Record<string, string>, profileDir: string | undefined): Promise<BenchServer | { unavailable: string }> {
    const execArgv = ['--import', 'tsx']
    if (profileDir !== undefined) execArgv.push('--cpu-prof', `--cpu-prof-dir=${profileDir}`)
    const child = fork(join(HERE, 'server.ts'), [name], {
      execArgv,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc']
    })
    let output = ''
    child.stdout?.on('data', (chunk: Buffer) => { output = (output + chunk.toString()).slice(-4_000) })
    child.stderr?.on('data', (chunk: Buffer) => { output = (output + chunk.toString()).slice(-4_000) })
    const port = await new Promise<number | { unavailable: string }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server ${name} did not start within 60 s:\n${output}`)), 60_000)
      child.on('message', (message: ServerMessage) => {
        if (message.type === 'ready') {
          clearTimeout(timer)
          resolve(message.port)
        } else if (message.type === 'unavailable') {
          clearTimeout(timer)
          resolve({ unavailable: message.reason })
        } else if (message.type === 'failed') {
          clearTimeout(timer)
          reject(new Error(`server ${name} failed to start: ${message.error}`))
        }
      })
      child.once('exit', (code) => {
        clearTimeout(timer)
        reject(new Error(`server ${name} exited with ${String(code)}:\n${output}`))
      })
    })
    if (typeof port !== 'number') {
      if (child.exitCode === null) await once(child, 'exit')
      return port
    }
    return new BenchServer(name, child, port, profileDir)
  }

  get url (): string {
    return `http://127.0.0.1:${this.port}`
  }

  private async call (command: { cmd: 'cpu' } | { cmd: 'stats', reset: boolean }): Promise<unknown> {
    const id = this.nextId++
    const answer = new Promise((resolve) => this.pending.set(id, resolve))
    this.child.send({ ...command, id })
    return await answer
  }

  /** CPU time this server has used, user + system, in microseconds. */
  async cpuUs (): Promise<number> {
    const usage = await this.call({ cmd: 'cpu' }) as NodeJS.CpuUsage
    return usage.user + usage.system
  }

  async stats (reset = false): Promise<ServerStats> {
    return await this.call({ cmd: 'stats', reset }) as ServerStats
  }

  async close (): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    const exited = once(this.child, 'exit')
    this.child.send({ cmd: 'close', id: 0 } satisfies ServerCommand)
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000)
    await exited
    clearTimeout(timer)
  }

  /** The .cpuprofile this server wrote when it exited, if it was profiled. */
  profileFile (): string | undefined {
    if (this.profileDir === undefined) return undefined
    const file = readdirSync(this.profileDir).find((name) => name.endsWith('.cpuprofile'))
    return file === undefined ? undefined : join(this.profileDir, file)
  }
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP helpers

interface Fetched {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
  ms: number
}

async function get (url: string, agent?: Agent, headers?: OutgoingHttpHeaders): Promise<Fetched> {
  const started = performance.now()
  return await new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent, headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({
        status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), ms: performance.now() - started
      }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] as number : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

function percentile (values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number
}

// ---------------------------------------------------------------------------------------------------------------
// Load

interface RoundResult {
  round: number
  reqPerSec: number
  p50Ms: number
  p99Ms: number
  requests: number
  serverCpuUsPerReq: number
  errors: number
  non2xx: number
  /** Redis CPU (user + system) per response, in microseconds, and the commands it ran per response. */
  redisCpuUsPerReq: number
  redisCommandsPerReq: number
  /** Cache counters during the round, for the cases on the plugin. */
  cache?: { hits: number, misses: number, writes: number, errors: number }
  /** The same case loaded by wrk right after autocannon, in the same round. */
  wrk?: WrkResult
}

let uniqueCounter = 0
const RUN_TAG = randomBytes(4).toString('hex')

async function load (
  c: LoadCase, server: BenchServer, durationS: number, onTick: () => void, onResponse?: (ms: number) => void
): Promise<autocannon.Result> {
  const options: autocannon.Options = { url: server.url + c.path, connections: CONNECTIONS, duration: durationS }
  if (c.headers !== undefined) options.headers = c.headers
  if (c.uniqueQuery === true) {
    options.requests = [{
      setupRequest: (request) => ({ ...request, path: `${c.path}?k=${RUN_TAG}-${uniqueCounter++}` })
    }]
  }
  return await new Promise((resolve, reject) => {
    const instance = autocannon(options, (err: unknown, result: autocannon.Result) => {
      if (err !== null && err !== undefined) reject(err instanceof Error ? err : new Error(String(err)))
      else resolve(result)
    })
    instance.on('tick', onTick)
    if (onResponse !== undefined) instance.on('response', (_client: unknown, _status: number, _bytes: number, ms: number) => onResponse(ms))
  })
}

/** Redis's own CPU time (user + system, µs) and the commands it has run, from INFO. */
async function redisCounters (client: Redis): Promise<{ cpuUs: number, commands: number }> {
  const info = await client.info()
  const field = (name: string): number => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info)?.[1] ?? NaN)
  return {
    cpuUs: (field('used_cpu_user') + field('used_cpu_sys')) * 1e6,
    commands: field('total_commands_processed')
  }
}

async function measure (
  c: LoadCase, server: BenchServer, redis: Redis, round: number, durationS: number, onTick: () => void, withWrk: boolean
): Promise<RoundResult> {
  const before = await server.stats()
  const redisBefore = await redisCounters(redis)
  const cpuBefore = await server.cpuUs()
  const result = await load(c, server, durationS, onTick)
  const cpuAfter = await server.cpuUs()
  const redisAfter = await redisCounters(redis)
  const after = await server.stats()
  const elapsedS = (result.finish.getTime() - result.start.getTime()) / 1000
  const requests = result.requests.total
  const round_: RoundResult = {
    round,
    reqPerSec: requests / elapsedS,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    requests,
    serverCpuUsPerReq: requests === 0 ? 0 : (cpuAfter - cpuBefore) / requests,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
    // Less the INFO call that took the second reading. With REDIS_URL, other clients' commands count too.
    redisCpuUsPerReq: requests === 0 ? 0 : (redisAfter.cpuUs - redisBefore.cpuUs) / requests,
    redisCommandsPerReq: requests === 0 ? 0 : (redisAfter.commands - redisBefore.commands - 1) / requests
  }
  if (before.cache !== undefined && after.cache !== undefined) {
    round_.cache = {
      hits: after.cache.hits - before.cache.hits,
      misses: after.cache.misses - before.cache.misses,
      writes: after.cache.writes - before.cache.writes,
      errors: after.cache.errors - before.cache.errors
    }
  }
  if (withWrk) {
    const { url } = server
    const uniquePrefix = c.uniqueQuery === true ? `${RUN_TAG}-w${uniqueCounter++}-` : undefined
    round_.wrk = await wrkLoad({ url, path: c.path, headers: c.headers, uniquePrefix, connections: CONNECTIONS, durationS })
  }
  return round_
}

/**
 * One request, checked: the right status, coding, body (once decoded) and x-cache, so that no case is measured serving
 * the wrong thing.
 */
async function check (c: LoadCase, server: BenchServer): Promise<Buffer> {
  const url = server.url + c.path + (c.uniqueQuery === true ? `?k=${RUN_TAG}-check` : '')
  let response = await get(url, undefined, c.headers)
  if (c.xCache === 'HIT') response = await get(url, undefined, c.headers) // the first one filled the cache
  const problems: string[] = []
  if (response.status !== 200) problems.push(`status ${response.status}`)
  const encoding = response.headers['content-encoding']
  if (encoding !== c.encoding) problems.push(`content-encoding ${String(encoding)}, expected ${c.encoding ?? 'none'}`)
  const body = decoded(response.body, encoding)
  const page = c.expected ?? PAGE_BUFFER
  if (body === undefined) problems.push(`a body that does not decode as ${String(encoding)}`)
  else if (c.page && !body.equals(page)) problems.push(`a body of ${body.length} bytes once decoded, not the ${page.length}-byte page`)
  const xCache = response.headers['x-cache'] ?? null
  if (xCache !== c.xCache) problems.push(`x-cache ${String(xCache)}, expected ${String(c.xCache)}`)
  if (problems.length > 0 || body === undefined) throw new Error(`${c.label} (${url}) answered with ${problems.join(', ')}`)
  return body
}

/** A body's identity bytes, or undefined when its coding is unknown or it does not decode. */
function decoded (body: Buffer, encoding: string | string[] | undefined): Buffer | undefined {
  if (encoding === undefined) return body
  const decode = encoding === 'br' ? brotliDecompressSync : encoding === 'gzip' ? gunzipSync : undefined
  try {
    return decode?.(body)
  } catch {
    return undefined
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Stampede

interface StampedeRound {
  round: number
  handlerRuns: number
  maxInFlight: number
  statuses: Record<string, number>
  xCache: Record<string, number>
  /** Store failures and timeouts during the round: a lookup that fails open reads as a miss. */
  cacheErrors: number
  p50Ms: number
  p99Ms: number
}

async function stampedeRound (server: BenchServer, round: number): Promise<StampedeRound> {
  // Open every connection first, so the 500 cold requests leave together instead of waiting on TCP handshakes.
  const agent = new Agent({ keepAlive: true, maxSockets: STAMPEDE_CONCURRENCY, maxFreeSockets: STAMPEDE_CONCURRENCY })
  try {
    await Promise.all(Array.from({ length: STAMPEDE_CONCURRENCY }, async () => await get(server.url + '/ping', agent)))
    const before = await server.stats(true)
    const path = `/cold?round=${RUN_TAG}-${round}`
    const responses = await Promise.all(Array.from({ length: STAMPEDE_CONCURRENCY }, async () => await get(server.url + path, agent)))
    const stats = await server.stats()
    const tally = (values: string[]): Record<string, number> => {
      const counts: Record<string, number> = {}
      for (const value of values) counts[value] = (counts[value] ?? 0) + 1
      return counts
    }
    const ms = responses.map((r) => r.ms)
    return {
      round,
      handlerRuns: stats.handlerRuns[path] ?? 0,
      maxInFlight: stats.maxInFlight,
      statuses: tally(responses.map((r) => String(r.status))),
      xCache: tally(responses.map((r) => String(r.headers['x-cache'] ?? 'none'))),
      cacheErrors: (stats.cache?.errors ?? 0) - (before.cache?.errors ?? 0),
      p50Ms: percentile(ms, 50),
      p99Ms: percentile(ms, 99)
    }
  } finally {
    agent.destroy()
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Bytes per page, by content coding

/** The pages of the bytes table: the server storing each as the plugin does now, and one storing it identity-only. */
const CODING_BYTES_PAGES: Array<{ page: string, path: string, stored: ServerCase, identityOnly: ServerCase }> = [
  { page: '50 KB page', path: '/large', stored: 'coding-hit-br', identityOnly: 'coding-miss-identity' },
  { page: 'blog index', path: '/', stored: 'blog-cached', identityOnly: 'blog-identity' }
]

/** A full run prints the bytes table, and so does one that asked for any coding case. */
function wantsCodingBytes (settings: Settings): boolean {
  return settings.only === undefined || [...settings.only].some((id) => id.startsWith('coding-'))
}

/** A HIT of `url` for a client sending `headers`: the write of the miss that filled it may still be on its way. */
async function hitOf (url: string, headers: OutgoingHttpHeaders = {}): Promise<Fetched> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const response = await get(url, undefined, headers)
    if (response.status === 200 && response.headers['x-cache'] === 'HIT') return response
    await sleep(20)
  }
  throw new Error(`${url} never answered a HIT`)
}

/** A cached page in Redis: the largest field of its key is the page (the others are bookkeeping), and the whole key. */
async function redisBytes (redis: Redis, key: string): Promise<RedisBytes> {
  const fields = await redis.hkeys(key)
  if (fields.length === 0) throw new Error(`nothing is stored at ${key}`)
  const lengths = await Promise.all(fields.map(async (field) => await redis.hstrlen(key, field)))
  const memory = await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')
  return { field: Math.max(...lengths), key: Number(memory) }
}

/** One page of the bytes table, from the server storing it as the plugin does now and one storing it identity-only. */
async function codingBytesOf (
  spec: typeof CODING_BYTES_PAGES[number], storing: BenchServer, identity: BenchServer, redis: Redis, prefix: string
): Promise<CodingBytes> {
  const length = (response: Fetched): number => Number(response.headers['content-length'] ?? response.body.length)
  await get(storing.url + spec.path) // fills the cache, if the run has not already
  const br = await hitOf(storing.url + spec.path, { 'accept-encoding': 'br' })
  const gzip = await hitOf(storing.url + spec.path, { 'accept-encoding': 'gzip' })
  const plain = await hitOf(storing.url + spec.path)
  if (br.headers['content-encoding'] !== 'br' || gzip.headers['content-encoding'] !== 'gzip') {
    throw new Error(`hits are not sent in the client's coding (${String(br.headers['content-encoding'])}, ` +
      `${String(gzip.headers['content-encoding'])})`)
  }
  await get(identity.url + spec.path)
  await hitOf(identity.url + spec.path) // a HIT: the identity-only page is in Redis
  return {
    page: spec.page,
    identityBytes: plain.body.length,
    wire: { br: length(br), gzip: length(gzip), identity: length(plain) },
    redis: {
      stored: await redisBytes(redis, `${prefix}${spec.stored}:view/${spec.path}`),
      identityOnly: await redisBytes(redis, `${prefix}${spec.identityOnly}:view/${spec.path}`)
    }
  }
}

/**
 * The content-coding table (issue 15; DESIGN.md "Encodings"): for the 50 KB page and the blog's index, the bytes of
 * one HIT for br, gzip and identity clients, and what Redis holds for the page stored as br + gzip and identity-only.
 * Uses the run's servers, and starts those it did not need into `servers`, so they are closed with the others.
 */
async function codingBytes (
  servers: Map<string, BenchServer>, env: Record<string, string>, redis: Redis, prefix: string
): Promise<{ rows: CodingBytes[], unavailable: string[] }> {
  const rows: CodingBytes[] = []
  const unavailable: string[] = []
  const serverOf = async (name: ServerCase): Promise<BenchServer | undefined> => {
    const running = servers.get(name)
    if (running !== undefined) return running
    // Seeding tops the blog up to ten posts: nothing to do when a blog of this run did it already.
    const started = await BenchServer.start(name, { ...env, BENCH_BLOG_SEED: '1' }, undefined)
    if (started instanceof BenchServer) {
      servers.set(name, started)
      return started
    }
    unavailable.push(`${name}: ${started.unavailable}`)
    return undefined
  }
  for (const spec of CODING_BYTES_PAGES) {
    // A page that cannot be measured is reported, not thrown: the run's load figures are taken already.
    try {
      const storing = await serverOf(spec.stored)
      const identity = await serverOf(spec.identityOnly)
      if (storing !== undefined && identity !== undefined) rows.push(await codingBytesOf(spec, storing, identity, redis, prefix))
    } catch (err) {
      unavailable.push(`${spec.page}: ${err instanceof Error ? err.message : String(err)}`)
    }
  }
  return { rows, unavailable }
}

// ---------------------------------------------------------------------------------------------------------------
// Refresh-ahead

interface AheadLoad {
  p50Ms: number
  p99Ms: number
  /** The slowest request of the round: the spike, when one request or fifty waited on a handler run. */
  maxMs: number
  /** Requests that took at least AHEAD_SLOW_MS: those that waited on a handler run. */
  slow: number
  requests: number
  failed: number
  handlerRuns: number
  /** Most handler runs at once. */
  maxRunning: number
}

interface AheadRound {
  round: number
  on: AheadLoad
  off: AheadLoad
}

/** Steady load on the hot page across its expiries: latency, and how often (and how many at once) the handler ran. */
async function aheadLoad (server: BenchServer, durationS: number, onTick: () => void): Promise<AheadLoad> {
  const c: LoadCase = { id: server.name, label: server.name, server: server.name, path: '/page', xCache: null, page: true }
  // Unmeasured: the page expired while the other server was loaded, and nothing refreshes a page nobody asks for.
  // The measured load starts on a page that is hot (and, with refresh-ahead, kept so), as in steady traffic.
  await load(c, server, AHEAD_WARMUP_S, () => {})
  const before = await server.stats(true)
  let slow = 0
  const result = await load(c, server, durationS, onTick, (ms) => { if (ms >= AHEAD_SLOW_MS) slow++ })
  const after = await server.stats()
  return {
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    maxMs: result.latency.max,
    slow,
    requests: result.requests.total,
    failed: result.errors + result.timeouts + result.non2xx,
    handlerRuns: (after.handlerRuns[''] ?? 0) - (before.handlerRuns[''] ?? 0),
    maxRunning: after.maxInFlight
  }
}

async function aheadRound (on: BenchServer, off: BenchServer, round: number, durationS: number, onTick: () => void): Promise<AheadRound> {
  // Alternate the order, as for the other cases.
  if (round % 2 === 0) {
    const measuredOn = await aheadLoad(on, durationS, onTick)
    return { round, on: measuredOn, off: await aheadLoad(off, durationS, onTick) }
  }
  const measuredOff = await aheadLoad(off, durationS, onTick)
  return { round, on: await aheadLoad(on, durationS, onTick), off: measuredOff }
}

// At 50 connections one expiry delays about fifty requests of tens of thousands: p99 does not see it. The slowest
// request of each round does, and the count of requests that waited on a handler run says how many it hit.
function aheadSummary (rounds: AheadRound[], durationS: number): { text: string, ratio: number, verdict: Verdict } {
  const ratio = median(rounds.map((r) => r.off.maxMs / r.on.maxMs))
  const maxRunning = Math.max(...rounds.map((r) => Math.max(r.on.maxRunning, r.off.maxRunning)))
  const verdict: Verdict = ratio >= AHEAD_MIN_MAX_RATIO && maxRunning === 1 ? 'PASS' : 'FAIL'
  const each = (side: 'on' | 'off', field: 'handlerRuns' | 'slow'): string => rounds.map((r) => r[side][field]).join(', ')
  const mid = (side: 'on' | 'off', field: 'p99Ms' | 'maxMs'): string => fmtMs(median(rounds.map((r) => r[side][field])))
  const text = `9  refresh-ahead, steady load across expiries (ttl ${AHEAD_TTL_S} s, handler ${AHEAD_HANDLER_MS} ms, ` +
    `${CONNECTIONS} connections, ${durationS} s per round):\n` +
    `   slowest request with refreshAhead ${mid('on', 'maxMs')} ms, without ${mid('off', 'maxMs')} ms; ` +
    `without ÷ with ${ratio.toFixed(2)} (≥ ${AHEAD_MIN_MAX_RATIO}) ${verdict}\n` +
    `   requests of ${AHEAD_SLOW_MS} ms or more per round: with ${each('on', 'slow')}; without ${each('off', 'slow')}\n` +
    `   p99 with ${mid('on', 'p99Ms')} ms, without ${mid('off', 'p99Ms')} ms\n` +
    `   handler runs per round: with ${each('on', 'handlerRuns')}; without ${each('off', 'handlerRuns')}; most at once ${maxRunning} (= 1)`
  return { text, ratio, verdict }
}

function fmtMs (ms: number): string {
  return ms < 10 ? ms.toFixed(2) : ms.toFixed(1)
}

// ---------------------------------------------------------------------------------------------------------------
// Main

async function redisVersion (url: string): Promise<string> {
  const client = new Redis(url, { lazyConnect: true })
  try {
    await client.connect()
    const info = await client.info('server')
    return /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown'
  } finally {
    client.disconnect()
  }
}

/** With REDIS_URL, removes what the bench wrote there: SCAN and UNLINK under its own prefix, nothing else. */
async function cleanExternal (url: string, prefix: string): Promise<void> {
  const client = new Redis(url)
  try {
    for await (const keys of client.scanStream({ match: prefix + '*', count: 500 })) {
      if ((keys as string[]).length > 0) await client.unlink(...(keys as string[]))
    }
  } finally {
    client.disconnect()
  }
}

export async function main (argv: string[]): Promise<number> {
  const settings = parseArgs(argv)
  const loadBefore = loadavg()[0] as number
  const selected = LOAD_CASES.filter((c) => settings.only === undefined || settings.only.has(c.id))
  /** Cases the plugin cannot run yet (it rejects an option they need), with the reason. */
  const unavailable = new Map<string, string>()
  const runStampede = settings.only === undefined || settings.only.has('stampede')
  const runAhead = settings.only === undefined || settings.only.has('refresh-ahead')
  const aheadDurationS = Math.max(settings.durationS, AHEAD_MIN_DURATION_S)

  const redis: TestRedis = await startRedis()
  const prefix = `bench-${RUN_TAG}:`
  const work = mkdtempSync(join(tmpdir(), 'fastify-cache-bench-'))
  const servers = new Map<string, BenchServer>()
  let infoClient: Redis | undefined
  const bar = new cliProgress.SingleBar({
    stream: process.stderr,
    format: ' bench {bar} {percentage}% | {stage} | ETA {eta_formatted}',
    hideCursor: true,
    clearOnComplete: true,
    noTTYOutput: true,
    notTTYSchedule: 15_000,
    etaBuffer: 30
  }, cliProgress.Presets.shades_classic)

  try {
    const version = await redisVersion(redis.url)
    const info = new Redis(redis.url)
    infoClient = info
    const env = {
      BENCH_REDIS_URL: redis.url,
      BENCH_PREFIX: prefix,
      BENCH_BLOG_DB: join(work, 'blog.db'),
      BENCH_STAMPEDE_MS: String(STAMPEDE_HANDLER_MS),
      BENCH_AHEAD_TTL_S: String(AHEAD_TTL_S),
      BENCH_AHEAD_MS: String(AHEAD_HANDLER_MS)
    }
    const serverNames: ServerCase[] = [...selected.map((c) => c.server), ...(runStampede ? ['stampede' as const] : []),
      ...(runAhead ? ['ahead-on' as const, 'ahead-off' as const] : [])]
    const loadsPerRound = settings.wrk ? 2 : 1
    const plannedS = selected.length * (settings.warmupS + settings.rounds * settings.durationS * loadsPerRound)
    bar.start(plannedS + serverNames.length + (runStampede ? settings.stampedeRounds : 0), 0, { stage: 'starting servers' })
    // Progress in seconds of load: autocannon ticks every second, and each run ends exactly on its share.
    let done = 0
    const step = (seconds: number): void => {
      done += seconds
      bar.update(done)
    }
    const ticker = (seconds: number): () => void => {
      let ticks = 0
      return () => { bar.update(done + Math.min(++ticks, seconds)) }
    }
    let seeded = false
    for (const name of serverNames) {
      bar.update({ stage: `starting ${name}` })
      const blogSeed = name.startsWith('blog') && !seeded
      if (blogSeed) seeded = true
      const profileDir = settings.profile.has(name) ? mkdtempSync(join(tmpdir(), `fastify-cache-prof-${name}-`)) : undefined
      const started = await BenchServer.start(name, { ...env, BENCH_BLOG_SEED: blogSeed ? '1' : '0' }, profileDir)
      if (started instanceof BenchServer) servers.set(name, started)
      else unavailable.set(name, started.unavailable)
      step(1)
    }
    const cases = selected.filter((c) => !unavailable.has(c.id))
    if (unavailable.has('stampede')) throw new Error(`the stampede server cannot run: ${unavailable.get('stampede') ?? ''}`)
    bar.setTotal(cases.length * (settings.warmupS + settings.rounds * settings.durationS * loadsPerRound) + serverNames.length +
      (runStampede ? settings.stampedeRounds : 0))
    const serverOf = (c: LoadCase): BenchServer => servers.get(c.server) as BenchServer

    // Every case serves what it claims to, before anything is timed; the two blogs serve the same bytes.
    const bodies = new Map<string, Buffer>()
    for (const c of cases) bodies.set(c.id, await check(c, serverOf(c)))
    const cachedBlog = bodies.get('blog-cached')
    const uncachedBlog = bodies.get('blog-uncached')
    if (cachedBlog !== undefined && uncachedBlog !== undefined && !cachedBlog.equals(uncachedBlog)) {
      throw new Error('the cached and uncached blog index differ: they would not be the same page')
    }
    const blogBytes = (cachedBlog ?? uncachedBlog)?.length

    for (const c of cases) {
      bar.update({ stage: `warm-up ${c.id}` })
      await load(c, serverOf(c), settings.warmupS, ticker(settings.warmupS))
      step(settings.warmupS)
    }

    const results = new Map<string, RoundResult[]>(cases.map((c) => [c.id, []]))
    for (let round = 0; round < settings.rounds; round++) {
      // Alternate the order, so that a drift of the machine during the run does not favour one side of a ratio.
      const order = round % 2 === 0 ? cases : [...cases].reverse()
      for (const c of order) {
        bar.update({ stage: `round ${round + 1}/${settings.rounds} ${c.id}` })
        results.get(c.id)?.push(await measure(c, serverOf(c), info, round, settings.durationS, ticker(settings.durationS), settings.wrk))
        step(settings.durationS * loadsPerRound)
      }
    }

    const stampedeRounds: StampedeRound[] = []
    const stampedeServer = servers.get('stampede')
    if (stampedeServer !== undefined) {
      for (let round = 0; round < settings.stampedeRounds; round++) {
        bar.update({ stage: `stampede ${round + 1}/${settings.stampedeRounds}` })
        stampedeRounds.push(await stampedeRound(stampedeServer, round))
        step(1)
      }
    }
    const aheadRounds: AheadRound[] = []
    const aheadOn = servers.get('ahead-on')
    const aheadOff = servers.get('ahead-off')
    if (aheadOn !== undefined && aheadOff !== undefined) {
      for (const server of [aheadOn, aheadOff]) await get(server.url + '/page') // the first request fills the page
      for (let round = 0; round < settings.rounds; round++) {
        bar.update({ stage: `refresh-ahead ${round + 1}/${settings.rounds}` })
        aheadRounds.push(await aheadRound(aheadOn, aheadOff, round, aheadDurationS, () => {}))
      }
    }
    bar.update({ stage: 'bytes per page' })
    const codings = wantsCodingBytes(settings) ? await codingBytes(servers, env, info, prefix) : undefined
    bar.update({ stage: 'closing servers' })
    for (const server of servers.values()) await server.close()
    bar.stop()

    // ----- summaries
    const summaries: CaseSummary[] = selected.map((row) => {
      const rounds = results.get(row.id)
      if (rounds === undefined) {
        return {
          id: row.id,
          label: row.label,
          reqPerSec: undefined,
          p50Ms: undefined,
          p99Ms: undefined,
          serverCpuUsPerReq: undefined,
          redisCpuUsPerReq: undefined,
          redisCommandsPerReq: undefined,
          note: `not yet available: ${unavailable.get(row.id) ?? 'not run'}`
        }
      }
      return {
        id: row.id,
        label: row.label,
        reqPerSec: median(rounds.map((r) => r.reqPerSec)),
        p50Ms: median(rounds.map((r) => r.p50Ms)),
        p99Ms: median(rounds.map((r) => r.p99Ms)),
        serverCpuUsPerReq: median(rounds.map((r) => r.serverCpuUsPerReq)),
        wrkReqPerSec: settings.wrk ? median(rounds.map((r) => r.wrk?.reqPerSec ?? NaN)) : undefined,
        redisCpuUsPerReq: median(rounds.map((r) => r.redisCpuUsPerReq)),
        redisCommandsPerReq: median(rounds.map((r) => r.redisCommandsPerReq))
      }
    })
    const comparisons: Comparison[] = COMPARISONS.flatMap((spec): Comparison[] => {
      const mine = results.get(spec.caseId)
      const theirs = results.get(spec.vsId)
      const vsLabel = SHORT_LABELS[spec.vsId] ?? spec.vsId
      const ran = (id: string): boolean => results.has(id) || unavailable.has(id)
      if (!ran(spec.caseId) || !ran(spec.vsId)) return [] // left out with --only
      const missing = [spec.caseId, spec.vsId].find((id) => unavailable.has(id))
      if (missing !== undefined) {
        const note = `${missing} not yet available: ${unavailable.get(missing) ?? ''}`
        return [{ caseId: spec.caseId, vsId: spec.vsId, vsLabel, ratio: undefined, rounds: [], min: spec.min, verdict: 'N/A', note }]
      }
      if (mine === undefined || theirs === undefined) return []
      const perRound = mine.map((r, i) => r.reqPerSec / (theirs[i]?.reqPerSec ?? NaN))
      const ratio = median(perRound)
      const cpuRatio = median(mine.map((r, i) => (theirs[i]?.serverCpuUsPerReq ?? NaN) / r.serverCpuUsPerReq))
      const wrkRounds = mine.map((r, i) => (r.wrk?.reqPerSec ?? NaN) / (theirs[i]?.wrk?.reqPerSec ?? NaN))
      const wrkRatio = settings.wrk ? median(wrkRounds) : undefined
      // A target holds only when it holds under both load generators.
      const holds = (n: number | undefined): boolean => n === undefined || n >= (spec.min ?? 0)
      const verdict: Verdict = spec.min === undefined ? 'INFO' : holds(ratio) && holds(wrkRatio) ? 'PASS' : 'FAIL'
      return [{ caseId: spec.caseId, vsId: spec.vsId, vsLabel, ratio, rounds: perRound, cpuRatio, wrkRatio, wrkRounds: settings.wrk ? wrkRounds : undefined, min: spec.min, verdict }]
    })
    let stampede: StampedeSummary | undefined
    if (stampedeRounds.length > 0) {
      const runs = stampedeRounds.map((r) => r.handlerRuns)
      stampede = {
        label: `7  cold stampede, ${STAMPEDE_CONCURRENCY} concurrent`,
        concurrency: STAMPEDE_CONCURRENCY,
        handlerMs: STAMPEDE_HANDLER_MS,
        runs,
        maxInFlight: stampedeRounds.map((r) => r.maxInFlight),
        p50Ms: median(stampedeRounds.map((r) => r.p50Ms)),
        p99Ms: median(stampedeRounds.map((r) => r.p99Ms)),
        verdict: runs.every((n) => n === 1) ? 'PASS' : 'FAIL'
      }
    }

    // Requests that failed, or cache hits that were not hits, make a round's figure meaningless: say so.
    const warnings: string[] = []
    for (const [id, rounds] of results) {
      for (const r of rounds) {
        if (r.errors > 0 || r.non2xx > 0) warnings.push(`${id} round ${r.round + 1}: ${r.errors} errors, ${r.non2xx} non-2xx`)
        if ((r.wrk?.failed ?? 0) > 0) warnings.push(`${id} round ${r.round + 1}: ${r.wrk?.failed ?? 0} failed requests under wrk`)
        if (r.cache !== undefined && (id === 'plugin-hit' || id === 'blog-cached' || id === 'coding-hit-br') && r.cache.misses > 0) {
          warnings.push(`${id} round ${r.round + 1}: ${r.cache.misses} misses (lookup timeouts: ${r.cache.errors}) among ${r.cache.hits} hits`)
        }
        if (r.cache !== undefined && (id === 'miss-plugin' || id.startsWith('coding-miss')) && r.cache.writes < r.requests * 0.99) {
          warnings.push(`${id} round ${r.round + 1}: only ${r.cache.writes} writes for ${r.requests} requests`)
        }
      }
    }
    if (!settings.wrk) warnings.push('wrk did not run (--no-wrk, or not installed): each verdict rests on autocannon alone')
    const busy = cpus().length * 0.5
    if (loadBefore > busy) {
      warnings.push(`the machine was busy before the run (1-minute load average ${loadBefore.toFixed(2)} on ` +
        `${cpus().length} cores): other work shares the CPUs, so every figure is noisier than usual`)
    }
    for (const r of stampedeRounds) {
      if (r.handlerRuns !== 1) {
        warnings.push(`stampede round ${r.round + 1}: ${r.handlerRuns} handler runs (x-cache ${JSON.stringify(r.xCache)}, ` +
          `${r.cacheErrors} store failures or timeouts during the round)`)
      }
      if (r.maxInFlight < STAMPEDE_CONCURRENCY) {
        warnings.push(`stampede round ${r.round + 1}: at most ${r.maxInFlight} of ${STAMPEDE_CONCURRENCY} requests were in flight at once`)
      }
    }

    const cpuList = cpus()
    const machine = {
      cores: cpuList.length,
      cpu: cpuList[0]?.model ?? 'unknown',
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      os: `${platform()} ${release()}`,
      loadAverageBefore: loadBefore,
      loadAverageAfter: loadavg()[0],
      redis: `${version}${redis.external ? ' (REDIS_URL)' : ' (own redis-server)'}`
    }
    const command = `npm run bench${argv.length > 0 ? ' -- ' + argv.join(' ') : ''}`
    const title = `fastify-cache bench: ${machine.cores} cores, Node ${machine.node}, Redis ${version}; ` +
      `${settings.rounds} rounds × ${settings.durationS} s, ${CONNECTIONS} connections`
    const table = textTable(summaries, comparisons, stampede)
    console.log(`\n${title}\n$ ${command}\n`)
    console.log(table)
    console.log('\nreq/s, p50, p99, node µs (the server process\'s CPU per response), redis µs (redis-server\'s CPU per ' +
      'response) and cmd/req (Redis commands per response) are medians of the rounds; each ratio is the median of the ' +
      'per-round ratios of two cases measured in the same round.')
    console.log(`Pages: ${PAGE_BUFFER.length} bytes (cases 1-5)${blogBytes === undefined ? '' : `, blog index ${blogBytes} bytes (case 6)`}. ` +
      `Stampede: a handler of ${STAMPEDE_HANDLER_MS} ms, ${STAMPEDE_CONCURRENCY} requests on open connections; ` +
      `peak in flight at the server ${stampede?.maxInFlight.join(', ') ?? 'n/a'}.`)
    const cpuLines = comparisons.filter((c) => c.min !== undefined && c.cpuRatio !== undefined).map((c) =>
      `${c.caseId} ÷ ${c.vsId} ${c.cpuRatio?.toFixed(2) ?? ''}`)
    if (cpuLines.length > 0) console.log(`The same targets in server CPU per response (theirs ÷ ours): ${cpuLines.join('; ')}.`)
    if (settings.profile.size > 0) console.log('Profiled servers run slower: this run\'s ratios are not the reference figures.')
    const ahead = aheadRounds.length > 0 ? aheadSummary(aheadRounds, aheadDurationS) : undefined
    if (ahead !== undefined) console.log('\n' + ahead.text)
    for (const r of aheadRounds) {
      if (r.on.failed > 0 || r.off.failed > 0) warnings.push(`refresh-ahead round ${r.round + 1}: ${r.on.failed + r.off.failed} failed requests`)
    }
    for (const [id, reason] of unavailable) console.log(`N/A ${id}: ${reason}`)
    for (const warning of warnings) console.log(`warning: ${warning}`)
    const codingTable = codings === undefined ? undefined : codingBytesTable(codings.rows, codings.unavailable)
    if (codingTable !== undefined) console.log('\n' + codingTable)

    const profiles: Record<string, ProfileSummary> = {}
    for (const [name, server] of servers) {
      const file = server.profileFile()
      if (file === undefined) continue
      profiles[name] = summarizeProfile(file)
      console.log('\n' + formatProfile(name, profiles[name]))
    }

    const json = {
      generatedAt: new Date().toISOString(),
      command,
      machine,
      settings: { ...settings, profile: [...settings.profile], only: settings.only === undefined ? undefined : [...settings.only], connections: CONNECTIONS },
      pageBytes: PAGE_BUFFER.length,
      blogIndexBytes: blogBytes,
      cases: Object.fromEntries(cases.map((c) => [c.id, { label: c.label, path: c.path, uniqueQuery: c.uniqueQuery === true, rounds: results.get(c.id) }])),
      summaries,
      comparisons,
      stampede: stampede === undefined ? undefined : { ...stampede, rounds: stampedeRounds },
      largePageBytes: LARGE_PAGE_BUFFER.length,
      codingBytes: codings === undefined
        ? undefined
        : { ...codings, rows: codings.rows.map((row) => ({ ...row, goalHolds: codingGoalHolds(row) })), table: codingTable },
      refreshAhead: ahead === undefined
        ? undefined
        : { ttlS: AHEAD_TTL_S, handlerMs: AHEAD_HANDLER_MS, durationS: aheadDurationS, maxRatio: ahead.ratio, verdict: ahead.verdict, rounds: aheadRounds },
      warnings,
      profiles,
      unavailable: Object.fromEntries(unavailable),
      notes: {
        'plugin-l1': 'fastify-cache with { l1: true, bus: true }: decoded pages in process memory in front of Redis, ' +
          'kept consistent across instances by the pub/sub bus. N/A when the plugin rejects those options.',
        'miss-process': "the miss case with singleFlight: 'process', i.e. without the fleet-wide Redis lock",
        'miss-ioredis': 'the floor of a miss on Redis, by hand: one HGET that finds nothing and one 4 KB HSET',
        'blog-uncached': 'The same blog (same SQLite file, same plugins) whose index route has its config.cache removed ' +
          'by an onRoute hook before fastify-cache sees it: no cache hooks run for it. The cached and uncached bodies ' +
          'are checked to be byte-identical.',
        'coding-compress-br': 'A constant route of the 50 KB page under @fastify/compress (global: true, its defaults), ' +
          'compressing every response for the br client.',
        'coding-miss-identity': 'The 50 KB miss with compressAbove: false: the identity bytes stored, nothing compressed.',
        codingBytes: 'Per page: content-length of one HIT for a br, a gzip and an identity client; in Redis, HSTRLEN of ' +
          "the page's field and MEMORY USAGE of its key, stored as br + gzip and identity-only (compressAbove: false)."
      },
      table
    }
    writeFileSync(join(HERE, 'results.json'), JSON.stringify(json, null, 2) + '\n')
    writeFileSync(join(HERE, 'results.svg'), svgChart(title, summaries, comparisons, stampede))
    console.log('\nwrote bench/results.json and bench/results.svg')
    // A missed target is a finding, not a crash: the exit code says so only when asked (--strict).
    const failed = comparisons.some((c) => c.verdict === 'FAIL') || stampede?.verdict === 'FAIL' || ahead?.verdict === 'FAIL'
    return failed && settings.strict ? 1 : 0
  } finally {
    bar.stop()
    infoClient?.disconnect()
    for (const server of servers.values()) await server.close().catch(() => {})
    if (redis.external) await cleanExternal(redis.url, prefix).catch(() => {})
    await redis.stop()
    rmSync(work, { recursive: true, force: true })
  }
}
