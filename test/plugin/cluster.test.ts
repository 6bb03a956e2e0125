import t, { type Test } from 'tap'
import { once } from 'node:events'
import Fastify, { type FastifyInstance } from 'fastify'
import type { Cluster, Redis } from 'ioredis'
import fastifyCache, { RedisStore, type FastifyCacheOptions } from '../../plugin/index.js'
import { startCluster } from '../helpers/cluster.js'
import { runStoreContract } from '../helpers/store-contract.js'
import { sleep, variantCount } from '../helpers/redis.js'

// Three masters, no replicas, started for this file: REDIS_URL plays no part.
const cluster = await startCluster(t)
const ports = cluster.nodes.map((node) => node.port)
const client = cluster.createClient()
if (client.status !== 'ready') await once(client, 'ready')
const nodeClients = new Map(ports.map((port) => [port, cluster.nodeClient(port)]))

let apps = 0

/** Fastify with fastify-cache on the Cluster client (the plugin's `redis` option), under a prefix of its own. */
async function build (
  t: Test, options: FastifyCacheOptions = {}, redis: Cluster = client
): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(fastifyCache, { prefix: `cluster-${++apps}:`, lookupTimeoutMs: 1_000, redis, ...options })
  t.equal(app.cache.storeKind, 'redis')
  t.ok((app.cache.store as RedisStore).isCluster, 'the plugin\'s store runs on the Cluster')
  return app
}

/** Every key matching `pattern`, by the port of the master that holds it, read from each master directly. */
async function keysByNode (pattern: string): Promise<Map<number, string[]>> {
  const found = new Map<number, string[]>()
  for (const [port, node] of nodeClients) {
    const keys: string[] = []
    for await (const batch of node.scanStream({ match: pattern, count: 500 })) keys.push(...(batch as string[]))
    found.set(port, keys.sort())
  }
  return found
}

/** The port of the master that owns the key's slot, from CLUSTER KEYSLOT and CLUSTER SLOTS. */
async function ownerOf (key: string): Promise<number> {
  const slot = await client.cluster('KEYSLOT', key)
  const ranges = await client.cluster('SLOTS')
  const owner = ranges.find(([from, to]) => slot >= from && slot <= to)?.[2]
  if (owner === undefined) throw new Error(`no master owns slot ${slot}`)
  return owner[1]
}

function escapeGlob (text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&')
}

t.ok(new RedisStore(client).isCluster, 'RedisStore sees a Cluster client')

runStoreContract(t, 'RedisStore on a Cluster', async () => ({ store: new RedisStore(client), prefix: 'contract:' }))

t.test('RedisStore on a Cluster: concurrent lookups and writes on keys of many slots, batched by slot', async (t) => {
  const store = new RedisStore(client)
  // 60 keys over many slots, and 10 that share one slot through a hash tag: each batch must stay within a slot.
  const keys = [
    ...Array.from({ length: 60 }, (_, i) => `batch:${i}`),
    ...Array.from({ length: 10 }, (_, i) => `batch:{tagged}:${i}`)
  ]
  const owners = new Set(await Promise.all(keys.map(async (key) => await ownerOf(key))))
  t.equal(owners.size, 3, 'the keys sit on all three masters')
  const reads = await Promise.all(keys.map(async (key, i) => await store.getField(key, 'v', { lock: { token: `t${i}`, ttlMs: 5_000 } })))
  t.ok(reads.every((read) => read.lock === 'taken'), 'every lookup answered, and locked its missing page')
  const written = await Promise.all(keys.map(async (key, i) =>
    await store.setField(key, 'v', Buffer.from(`page ${key}`), { ttlMs: 5_000, maxFields: 10, ifVersion: reads[i]?.version, unlock: `t${i}` })))
  t.ok(written.every(Boolean), 'every write landed')
  const again = await Promise.all(keys.map(async (key, i) => await store.getField(key, 'v', { lock: { token: `u${i}`, ttlMs: 5_000 } })))
  t.same(again.map((read) => read.value?.toString()), keys.map((key) => `page ${key}`), 'each key holds its own page')
  t.ok(again.every((read) => read.lock === 'free'), 'and no lock is left')
})

t.test('RedisStore on a Cluster sends each script in full to each master first: no NOSCRIPT, no reordering', async (t) => {
  for (const node of nodeClients.values()) await node.script('FLUSH')
  const fresh = cluster.createClient()
  t.teardown(() => fresh.disconnect())
  if (fresh.status !== 'ready') await once(fresh, 'ready')
  const store = new RedisStore(fresh)
  const seen = new Map<number, string[]>()
  const monitors: Redis[] = []
  for (const [port, node] of nodeClients) {
    const commands: string[] = []
    seen.set(port, commands)
    const monitor = await node.monitor()
    monitors.push(monitor)
    // Only this test's calls: eval/evalsha args are [command, source or sha, numkeys, first key, ...].
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (/^eval/i.test(String(args[0])) && String(args[3]).startsWith('noscript:')) commands.push(String(args[0]).toLowerCase())
    })
  }
  t.teardown(() => { for (const monitor of monitors) monitor.disconnect() })
  const keys = Array.from({ length: 30 }, (_, i) => `noscript:${i}`)
  for (const key of keys) await store.getField(key, 'v', { lock: { token: 't', ttlMs: 5_000 } })
  for (const key of keys) await store.getField(key, 'v', { lock: { token: 'u', ttlMs: 5_000 } })
  await sleep(100)
  for (const [port, commands] of seen) {
    t.ok(commands.length > 1, `master ${port} ran the lookups of its keys (${commands.length})`)
    t.equal(commands[0], 'eval', `master ${port} got the script in full first`)
    t.equal(commands.filter((name) => name === 'eval').length, 1, `and only once (${commands.join(' ')})`)
  }
})

t.test('pages: MISS then HIT on many paths, whose keys sit on all three masters', async (t) => {
  const app = await build(t)
  let calls = 0
  app.get('/page/:id', { config: { cache: { ttl: 60 } } }, async (request) => {
    calls++
    return `page ${(request.params as { id: string }).id}`
  })
  const ids = Array.from({ length: 30 }, (_, i) => `p${i}`)
  for (const id of ids) {
    const miss = await app.inject(`/page/${id}`)
    t.equal(miss.statusCode, 200)
    t.equal(miss.headers['x-cache'], 'MISS', `${id} misses first`)
  }
  for (const id of ids) {
    const hit = await app.inject(`/page/${id}`)
    t.equal(hit.headers['x-cache'], 'HIT', `${id} hits next`)
    t.equal(hit.body, `page ${id}`)
  }
  t.equal(calls, ids.length, 'each handler ran once')

  const byNode = await keysByNode(escapeGlob(app.cache.prefix) + 'view/*')
  const all = [...byNode.values()].flat()
  t.same(all.sort(), ids.map((id) => `${app.cache.prefix}view//page/${id}`).sort(), 'one key per path')
  for (const [port, keys] of byNode) {
    t.ok(keys.length > 0, `master ${port} holds some of the pages (${keys.length})`)
    for (const key of keys) t.equal(await ownerOf(key), port, `${key} is on the master that owns its slot`)
  }
})

t.test('query-string variants live in one key per path; delete(view/<path>) removes them all', async (t) => {
  const app = await build(t)
  let calls = 0
  app.get('/list/:name', { config: { cache: { queryString: true } } }, async (request) => {
    calls++
    return `${(request.params as { name: string }).name} ${JSON.stringify(request.query)}`
  })
  const names = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta']
  const owners = new Set(await Promise.all(names.map(async (name) => await ownerOf(`${app.cache.prefix}view//list/${name}`))))
  t.ok(owners.size >= 2, `the paths sit on ${owners.size} masters`)
  const urls = (name: string): string[] => [`/list/${name}`, `/list/${name}?page=1`, `/list/${name}?page=2&sort=up`]
  for (const name of names) {
    for (const url of urls(name)) t.equal((await app.inject(url)).headers['x-cache'], 'MISS', `${url} misses`)
  }
  for (const name of names) {
    for (const url of urls(name)) t.equal((await app.inject(url)).headers['x-cache'], 'HIT', `${url} hits`)
    t.equal(await variantCount(client, `${app.cache.prefix}view//list/${name}`), 3, `three variants under view//list/${name}`)
  }
  t.equal((await app.inject('/list/alpha?sort=up&page=2')).headers['x-cache'], 'HIT', 'parameter order does not matter')
  t.equal(calls, names.length * 3)

  for (const name of names.slice(0, 3)) t.equal(await app.cache.delete(`view//list/${name}`), true, `${name} deleted`)
  for (const name of names.slice(0, 3)) {
    t.equal(await app.cache.has(`view//list/${name}`), false, `view//list/${name} is gone`)
    for (const url of urls(name)) t.equal((await app.inject(url)).headers['x-cache'], 'MISS', `${url} purged`)
  }
  for (const name of names.slice(3)) {
    for (const url of urls(name)) t.equal((await app.inject(url)).headers['x-cache'], 'HIT', `${url} untouched`)
  }
  t.equal(await app.cache.delete('view//list/never'), false)
})

t.test('clear() removes the prefix on every master and nothing outside it', async (t) => {
  const app = await build(t)
  app.get('/c/:id', { config: { cache: true } }, async (request) => `c ${(request.params as { id: string }).id}`)
  const prefix = app.cache.prefix
  for (let i = 0; i < 20; i++) await app.inject(`/c/${i}`)
  // Page writes run in the background: a HIT shows each one has landed.
  for (let i = 0; i < 20; i++) t.equal((await app.inject(`/c/${i}`)).headers['x-cache'], 'HIT')
  await app.cache.setMany(Array.from({ length: 20 }, (_, i) => [`value-${i}`, i] as const), 60)
  const pages = await keysByNode(escapeGlob(prefix) + 'view/*')
  const values = await keysByNode(escapeGlob(prefix) + 'value-*')
  t.equal([...pages.values()].flat().length, 20)
  t.equal([...values.values()].flat().length, 20)
  for (const port of ports) {
    t.ok((pages.get(port) ?? []).length > 0 && (values.get(port) ?? []).length > 0, `master ${port} holds pages and values`)
  }

  // Foreign keys: a sibling prefix that shares the text before the colon, and another application's keys.
  const foreign = [
    ...Array.from({ length: 10 }, (_, i) => `${prefix.slice(0, -1)}-other:${i}`),
    ...Array.from({ length: 10 }, (_, i) => `another-app:${prefix}${i}`)
  ]
  for (const key of foreign) await client.set(key, 'keep', 'EX', 60)
  t.teardown(async () => { await Promise.all(foreign.map(async (key) => await client.unlink(key))) })
  const foreignOwners = new Set(await Promise.all(foreign.map(ownerOf)))
  t.ok(foreignOwners.size >= 2, `the foreign keys sit on ${foreignOwners.size} masters`)

  // At least the pages and values; the plugin may keep other keys of its own under the prefix.
  t.ok(await app.cache.clear() >= 40, 'clear counts every key it removed')
  const after = await keysByNode(escapeGlob(prefix) + '*')
  for (const [port, keys] of after) t.same(keys, [], `nothing under the prefix is left on ${port}`)
  const kept = await Promise.all(foreign.map(async (key) => await client.get(key)))
  t.ok(kept.every((value) => value === 'keep'), 'every foreign key is untouched')
  t.equal((await app.inject('/c/1')).headers['x-cache'], 'MISS', 'pages are recomputed after clear')
})

t.test('setMany, getMany and deleteMany across slots', async (t) => {
  const app = await build(t)
  const keys = Array.from({ length: 24 }, (_, i) => `many-${i}`)
  const owners = new Set(await Promise.all(keys.map(async (key) => await ownerOf(app.cache.prefix + key))))
  t.equal(owners.size, 3, 'the keys span all three masters')

  await app.cache.setMany(keys.map((key, i) => [key, { i, key }] as const), 60)
  await app.cache.setMany({ 'obj-a': 'A', 'obj-b': ['B'] })
  t.same(await app.cache.getMany([...keys, 'missing']), [...keys.map((key, i) => ({ i, key })), undefined],
    'values come back in order, a missing key as undefined')
  t.same(await app.cache.getMany(['obj-b', 'obj-a']), [['B'], 'A'])

  const doomed = keys.filter((_, i) => i % 2 === 0)
  const doomedOwners = new Set(await Promise.all(doomed.map(async (key) => await ownerOf(app.cache.prefix + key))))
  t.equal(doomedOwners.size, 3, 'the deleted keys span all three masters')
  t.equal(await app.cache.deleteMany([...doomed, 'missing']), doomed.length, 'only the keys that existed are counted')
  const left = await app.cache.getMany(keys)
  keys.forEach((key, i) => {
    t.same(left[i], i % 2 === 0 ? undefined : { i, key }, `${key} ${i % 2 === 0 ? 'deleted' : 'kept'}`)
  })
  t.equal(await app.cache.deleteMany([]), 0)
})

t.test('wrap, memoize and deleteMemoized on a Cluster', async (t) => {
  const app = await build(t)
  const keys = Array.from({ length: 9 }, (_, i) => `wrapped-${i}`)
  t.equal(new Set(await Promise.all(keys.map(async (key) => await ownerOf(app.cache.prefix + key)))).size, 3)
  let computed = 0
  for (const key of keys) t.equal(await app.cache.wrap(key, () => `${key} ${++computed}`, { ttl: 60 }), `${key} ${computed}`)
  for (const key of keys) t.equal(await app.cache.wrap(key, () => 'recomputed'), `${key} ${keys.indexOf(key) + 1}`, `${key} cached`)
  t.equal(computed, keys.length)

  let squares = 0
  const square = app.cache.memoize(async function square (n: number) {
    squares++
    return n * n
  }, { ttl: 60 })
  let cubes = 0
  const cube = app.cache.memoize((n: number) => {
    cubes++
    return n ** 3
  }, { name: 'cube', ttl: 60 })
  for (let n = 0; n < 5; n++) {
    t.equal(await square(n), n * n)
    t.equal(await cube(n), n ** 3)
  }
  for (let n = 0; n < 5; n++) {
    t.equal(await square(n), n * n)
    t.equal(await cube(n), n ** 3)
  }
  t.equal(squares, 5, 'each square computed once')
  t.equal(cubes, 5, 'each cube computed once')
  t.equal(await variantCount(client, app.cache.prefix + 'memoize/square'), 5, 'one key per function, one field per call')

  t.equal(await app.cache.deleteMemoized(square, 2), true, 'one call dropped')
  t.equal(await square(2), 4)
  t.equal(await square(3), 9)
  t.equal(squares, 6, 'only the dropped call was recomputed')
  t.equal(await app.cache.deleteMemoized(cube), true, 'every call dropped')
  t.equal(await app.cache.has('memoize/cube'), false)
  for (let n = 0; n < 5; n++) t.equal(await cube(n), n ** 3)
  t.equal(cubes, 10, 'all recomputed')
})

// Last: it kills a master, and the cluster stays broken for the rest of the file.
t.test('tags on a Cluster: invalidateTags reaches entries on every master, with every variant', async (t) => {
  const app = await build(t)
  let version = 1
  app.get('/tagged/:id', {
    config: { cache: { queryString: true, tags: (request) => ['all-tagged', `tagged:${(request.params as { id: string }).id}`] } }
  }, async (request) => `tagged ${(request.params as { id: string }).id} v${version}`)
  for (let id = 0; id < 20; id++) {
    await app.inject(`/tagged/${id}`)
    await app.inject(`/tagged/${id}?variant=1`)
  }
  await app.cache.set('tagged-value', 1, { tags: ['all-tagged'] })
  const byNode = await keysByNode(`${app.cache.prefix}view//tagged/*`)
  t.equal([...byNode.values()].filter((keys) => keys.length > 0).length, 3, 'tagged pages on all three masters')
  version = 2
  t.equal(await app.cache.invalidateTags(['tagged:3']), 1)
  // A render that begins in the purge's own millisecond is refused (it may have read the old data): step past it.
  await new Promise((resolve) => setTimeout(resolve, 5))
  t.equal((await app.inject('/tagged/3?variant=1')).body, 'tagged 3 v2')
  t.equal((await app.inject('/tagged/4')).headers['x-cache'], 'HIT')
  t.equal(await app.cache.invalidateTags(['all-tagged']), 21, 'twenty pages and one value')
  await new Promise((resolve) => setTimeout(resolve, 5))
  for (const id of [0, 7, 19]) t.equal((await app.inject(`/tagged/${id}?variant=1`)).body, `tagged ${id} v2`)
  t.equal(await app.cache.get('tagged-value'), undefined)
  // Each page's own tag index (`tagged:<id>`) still names its purged page, except for the three just re-rendered.
  t.equal(await app.cache.pruneTags(), 17, 'the sweep drops the dead members, on every master')
  t.equal(await app.cache.pruneTags(), 0)
})

t.test('two instances with L1 and the bus on a Cluster stay consistent', async (t) => {
  const prefix = 'cluster-bus:'
  const a = await build(t, { prefix, l1: true, bus: true })
  const b = await build(t, { prefix, l1: true, bus: true })
  let content = 'first'
  for (const app of [a, b]) {
    app.get('/', { config: { cache: true } }, async () => content)
    await app.ready()
  }
  await b.inject('/')
  t.equal((await b.inject('/')).headers['x-cache'], 'HIT')
  content = 'second'
  await a.cache.delete('view//')
  for (let attempt = 0; attempt < 500 && (b.cache.stats().bus?.received ?? 0) < 1; attempt++) await new Promise((resolve) => setTimeout(resolve, 2))
  t.equal((await b.inject('/')).body, 'second')
})

t.test('fleet single flight on a Cluster: 200 cold requests over two instances, one handler run', async (t) => {
  const prefix = 'cluster-fleet:'
  const apps = [await build(t, { prefix }), await build(t, { prefix })]
  let runs = 0
  for (const app of apps) {
    app.get('/cold', { config: { cache: true } }, async () => {
      runs++
      await new Promise((resolve) => setTimeout(resolve, 150))
      return 'once'
    })
    await app.ready()
  }
  const responses = await Promise.all(Array.from({ length: 200 }, async (_, i) => await apps[i % 2]!.inject('/cold')))
  t.ok(responses.every((response) => response.statusCode === 200 && response.body === 'once'))
  t.equal(runs, 1)
})

t.test('clear() through a Cluster client that has not loaded its slot map yet', async (t) => {
  const seed = await build(t, { prefix: 'cluster-early:' })
  for (let i = 0; i < 30; i++) await seed.cache.set(`early-${i}`, i)
  const fresh = cluster.createClient()
  t.teardown(() => fresh.disconnect())
  t.equal(await new RedisStore(fresh).clear('cluster-early:'), 30)
})

t.test('a master killed (SIGKILL): every request is still answered with 200', async (t) => {
  const redis = cluster.createClient()
  redis.on('error', () => {}) // reconnection errors to the dead master are expected here
  redis.on('node error', () => {})
  if (redis.status !== 'ready') await once(redis, 'ready')
  const app = await build(t, { lookupTimeoutMs: 200, breaker: { threshold: 3, cooldownMs: 200 } }, redis)
  let calls = 0
  app.get('/k/:id', { config: { cache: { ttl: 60 } } }, async (request) => {
    calls++
    return `k ${(request.params as { id: string }).id}`
  })
  const ids = Array.from({ length: 15 }, (_, i) => `${i}`)
  for (const id of ids) await app.inject(`/k/${id}`)
  for (const id of ids) t.equal((await app.inject(`/k/${id}`)).headers['x-cache'], 'HIT', `${id} cached`)

  const victim = ports[1] as number
  const onVictim = new Set<string>()
  for (const id of ids) if (await ownerOf(`${app.cache.prefix}view//k/${id}`) === victim) onVictim.add(id)
  t.ok(onVictim.size > 0, `some pages (${onVictim.size}) live on the master about to die`)
  await cluster.kill(victim)

  const before = calls
  for (let round = 0; round < 3; round++) {
    for (const id of ids) {
      const response = await app.inject(`/k/${id}`)
      t.equal(response.statusCode, 200, `round ${round}: /k/${id} answered`)
      t.equal(response.body, `k ${id}`)
      if (onVictim.has(id)) t.not(response.headers['x-cache'], 'HIT', `/k/${id} is not served from a dead master`)
    }
  }
  t.ok(calls > before, 'pages on the dead master were computed again')
  t.ok(app.cache.stats().errors > 0, `store failures were counted (${app.cache.stats().errors})`)
})
