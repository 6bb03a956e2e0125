import t from 'tap'
import { once } from 'node:events'
import Fastify, { type LightMyRequestResponse } from 'fastify'
import fastifyCache from '../../plugin/index.js'
import { waitFor } from '../helpers/cluster.js'
import { MASTER_NAME, startSentinel } from '../helpers/sentinel.js'

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

// A master, a replica and a Sentinel started for this file: REDIS_URL plays no part.
const sentinel = await startSentinel(t)
const redis = sentinel.createClient()
redis.on('error', () => {}) // the connection drops during the failover; that is expected here
if (redis.status !== 'ready') await once(redis, 'ready')
t.equal(redis.options.failoverDetector, true, 'the client follows +switch-master')

const app = Fastify()
t.teardown(async () => await app.close())
// A short breaker cooldown, so that errors during the failover do not keep the cache off long after it.
await app.register(fastifyCache, {
  redis, prefix: 'sentinel-test:', lookupTimeoutMs: 1_000, breaker: { threshold: 3, cooldownMs: 100 }
})
let calls = 0
app.get('/s/:id', { config: { cache: { ttl: 60 } } }, async (request) => {
  calls++
  return `s ${(request.params as { id: string }).id}`
})
await app.ready()

const pageKey = (id: string): string => `${app.cache.prefix}view//s/${id}`

t.test('through the Sentinel: MISS then HIT, stored on the master', async (t) => {
  t.equal(await sentinel.masterPort(), sentinel.master.port)
  const miss = await app.inject('/s/before')
  t.equal(miss.statusCode, 200)
  t.equal(miss.headers['x-cache'], 'MISS')
  const hit = await app.inject('/s/before')
  t.equal(hit.headers['x-cache'], 'HIT')
  t.equal(hit.body, 's before')
  t.equal(calls, 1)
  t.equal(await sentinel.nodeClient(sentinel.master.port).exists(pageKey('before')), 1, 'the page is on the master')
})

t.test('SENTINEL FAILOVER: requests stay 200 throughout, and caching resumes on the new master', async (t) => {
  const oldMaster = sentinel.master.port
  const newMaster = sentinel.replica.port
  const responses: LightMyRequestResponse[] = []
  const request = async (url: string): Promise<LightMyRequestResponse> => {
    const response = await app.inject(url)
    responses.push(response)
    return response
  }

  t.equal(await sentinel.sentinelClient().call('SENTINEL', 'FAILOVER', MASTER_NAME), 'OK')
  // During: requests keep coming while the Sentinel promotes the replica.
  let round = 0
  await waitFor('the Sentinel to report the replica as master', async () => {
    await request(`/s/during-${round}`)
    await request(`/s/during-${round++}`)
    await request('/s/before')
    return await sentinel.masterPort() === newMaster
  }, { attempts: 200 })
  const promoted = sentinel.nodeClient(newMaster)
  await waitFor('the promoted replica to take the master role', async () => (await promoted.role())[0] === 'master')

  // After: within a bounded number of attempts, a fresh page misses, then hits, and is on the new master. Each
  // attempt uses a new path, so that a hit can only come from a write made after the failover. The first attempts
  // may still reach the old master: the Sentinel reports the new one before the client has acted on +switch-master,
  // and the old master takes writes until the Sentinel turns it into a replica.
  let cached: string | undefined
  const misplaced: string[] = []
  for (let attempt = 0; attempt < 100 && cached === undefined; attempt++) {
    const id = `after-${attempt}`
    const first = await request(`/s/${id}`)
    const second = await request(`/s/${id}`)
    if (first.headers['x-cache'] === 'MISS' && second.headers['x-cache'] === 'HIT') {
      if (await promoted.exists(pageKey(id)) === 1) cached = id
      else misplaced.push(id)
    }
    if (cached === undefined) await sleep(100)
  }
  t.ok(cached !== undefined, `a MISS followed by a HIT, stored on the new master (${newMaster}): ${cached}`)
  t.comment(`pages cached on the old master after the Sentinel switched: ${misplaced.length}`)
  t.not(newMaster, oldMaster)
  t.equal((await promoted.role())[0], 'master')

  const failed = responses.filter((response) => response.statusCode !== 200)
  t.same(failed.map((response) => response.statusCode), [], `all ${responses.length} requests answered with 200`)
  t.ok(responses.every((response) => response.body.startsWith('s ')), 'every body is the page')
})
