import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { build } from '../helpers/app.js'
import { RedisStore, type CacheStore, type FastifyCacheOptions, type GetFieldOptions } from '../../plugin/index.js'
import { fleetLocks, redisForFile, sleep } from '../helpers/redis.js'
import { childEnv } from '../helpers/child.js'

const { redis, client } = await redisForFile(t)

/**
 * `count` instances sharing one Redis and one prefix, as a fleet of processes would, each with the same route added
 * by `route`, ready to serve.
 */
async function fleet (
  t: Test, name: string, count: number, route: (app: FastifyInstance) => void, cache: FastifyCacheOptions = {}
): Promise<FastifyInstance[]> {
  const apps: FastifyInstance[] = []
  for (let i = 0; i < count; i++) {
    const app = await build(t, { redis, cache: { prefix: `${redis.prefix}${name}:`, ...cache } })
    route(app)
    await app.ready()
    apps.push(app)
  }
  return apps
}

t.test('two instances, 200 concurrent cold requests: the handler runs once across both', async (t) => {
  let runs = 0
  const apps = await fleet(t, 'fleet-a', 2, (app) => app.get('/cold', { config: { cache: true } }, async () => {
    runs++
    await sleep(150)
    return 'once'
  }))
  const responses = await Promise.all(Array.from({ length: 200 }, async (_, i) => await apps[i % 2]!.inject('/cold')))
  t.equal(runs, 1, 'one handler run for the fleet')
  t.ok(responses.every((response) => response.statusCode === 200 && response.body === 'once'))
  t.equal(responses.filter((response) => response.headers['x-cache'] === 'MISS').length, 1)
  await sleep(50)
  t.same(await fleetLocks(client, apps[0]!.cache.prefix), [], 'the lock was released')
})

t.test('a lookup that fails after it reached Redis releases the lock it may have taken', async (t) => {
  const real = new RedisStore(client)
  let failures = 0
  // The first lookup runs in Redis (and locks the missing page), then its answer is lost, as when a connection closes.
  const store = new Proxy(real, {
    get (target, name) {
      if (name === 'getField') {
        return async (key: string, field: string, options?: GetFieldOptions) => {
          const read = await target.getField(key, field, options)
          if (options?.lock !== undefined && failures++ === 0) throw new Error('the connection closed after the lookup was sent')
          return read
        }
      }
      const value: unknown = Reflect.get(target, name, target)
      return typeof value === 'function' ? value.bind(target) : value
    }
  }) as CacheStore
  const prefix = `${redis.prefix}lost-lookup:`
  const app = await build(t, { cache: { prefix, store } })
  app.get('/lost', { config: { cache: true } }, async () => 'page')
  const response = await app.inject('/lost')
  t.equal(response.statusCode, 200)
  t.equal(response.body, 'page', 'the page is computed all the same')
  t.equal(failures, 1)
  await sleep(50)
  t.same(await fleetLocks(client, prefix), [], 'the lock the lost lookup took is released, not left for lockTimeoutMs')
})

t.test("singleFlight: 'process' runs once per process", async (t) => {
  let runs = 0
  const apps = await fleet(t, 'fleet-b', 2, (app) => app.get('/cold', { config: { cache: true } }, async () => {
    runs++
    await sleep(100)
    return 'per process'
  }), { singleFlight: 'process' })
  await Promise.all(Array.from({ length: 100 }, async (_, i) => await apps[i % 2]!.inject('/cold')))
  t.equal(runs, 2)
})

t.test('a response that may not be stored frees the other processes at once: they do not queue behind each other', async (t) => {
  let running = 0
  let overlapped = 0
  const apps = await fleet(t, 'fleet-u', 3, (app) => app.get('/personal', { config: { cache: true } }, async (_request, reply) => {
    running++
    overlapped = Math.max(overlapped, running)
    await sleep(150)
    running--
    return reply.header('set-cookie', 'session=abc').send('not for the cache')
  }))
  const responses = await Promise.all(apps.map(async (app) => await app.inject('/personal')))
  t.ok(responses.every((response) => response.statusCode === 200 && response.body === 'not for the cache'))
  t.ok(overlapped >= 2, `the waiting processes computed alongside, not one after another (${overlapped} at once)`)
  t.same(await fleetLocks(client, apps[0]!.cache.prefix), [], 'no lock left')
})

t.test('a lock left by a crashed process expires, and the page is then computed', async (t) => {
  const app = await build(t, { redis, cache: { lockTimeoutMs: 300 } })
  let runs = 0
  app.get('/orphan', { config: { cache: true } }, async () => `run ${++runs}`)
  const pageKey = app.cache.prefix + 'view//orphan'
  const [seconds, micros] = await client.time()
  // A lock as a crashed process left it: its token and its expiry (the store's clock), 300 ms from now.
  const expires = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) + 300
  await client.hset(pageKey, ' lock ', `crashed-process:1 ${expires}`)
  await client.pexpire(pageKey, 2_000)
  const started = Date.now()
  const response = await app.inject('/orphan')
  t.equal(response.statusCode, 200)
  t.equal(response.body, 'run 1')
  t.equal(response.headers['x-cache'], 'MISS')
  t.ok(Date.now() - started >= 250, 'it waited for the lock to expire')
  t.same(await fleetLocks(client, app.cache.prefix), [], 'the orphaned lock is gone')
  t.equal((await app.inject('/orphan')).headers['x-cache'], 'HIT')
})

t.test('a lock holder that fails releases the others, who compute', async (t) => {
  let runs = 0
  const apps = await fleet(t, 'fleet-c', 2, (app) => app.get('/fails-first', { config: { cache: true } }, async () => {
    runs++
    await sleep(80)
    if (runs === 1) throw new Error('first run fails')
    return 'second run works'
  }))
  const responses = await Promise.all(Array.from({ length: 40 }, async (_, i) => await apps[i % 2]!.inject('/fails-first')))
  t.equal(responses.filter((response) => response.statusCode === 500).length, 1)
  t.ok(responses.filter((response) => response.statusCode === 200).every((response) => response.body === 'second run works'))
  t.ok(runs <= 3, `the failure did not start a stampede (${runs} runs)`)
})

async function startProcess (prefix: string): Promise<{ child: ChildProcess, port: number }> {
  const script = fileURLToPath(new URL('../helpers/fleet-server.ts', import.meta.url))
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    env: childEnv({ REDIS_URL: redis.url, CACHE_PREFIX: prefix }),
    stdio: ['ignore', 'pipe', 'inherit']
  })
  const [chunk] = await once(child.stdout!, 'data') as [Buffer]
  return { child, port: Number(chunk.toString().trim()) }
}

t.test('two real processes, 200 concurrent cold requests over HTTP: one handler run', async (t) => {
  const prefix = `${redis.prefix}fleet-d:`
  const processes = await Promise.all([startProcess(prefix), startProcess(prefix)])
  t.teardown(async () => {
    for (const { child } of processes) {
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      await exited
    }
  })
  const responses = await Promise.all(Array.from({ length: 200 }, async (_, i) => {
    const response = await fetch(`http://127.0.0.1:${processes[i % 2]!.port}/cold`)
    return { status: response.status, cache: response.headers.get('x-cache'), body: await response.text() }
  }))
  t.ok(responses.every((response) => response.status === 200 && response.body === '<h1>computed once for the fleet</h1>'))
  const runs = await Promise.all(processes.map(async ({ port }) =>
    ((await (await fetch(`http://127.0.0.1:${port}/runs`)).json()) as { handlerRuns: number }).handlerRuns))
  t.equal(runs[0]! + runs[1]!, 1, `one handler run across both processes (${runs.join(' + ')})`)
  t.equal(responses.filter((response) => response.cache === 'MISS').length, 1)
})
