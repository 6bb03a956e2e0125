// Short form of stress scenario 5: 2,000 fuzzed requests (stress/lib/fuzz.ts) through inject on the cached routes.
import t from 'tap'
import { Redis } from 'ioredis'
import { MAX_KEY_BYTES } from '../../plugin/index.js'
import { fuzzRequests } from '../../stress/lib/fuzz.js'
import { census, usedMemory } from '../../stress/lib/redis.js'
import { ownRedisForTest, rightBody, stressApp } from './fixtures/helpers.js'
import { variantCount } from '../helpers/redis.js'

const COUNT = 2_000
const MAX_VARIANTS = 20
const SEED = 20_251_125

t.test(`${COUNT} fuzzed requests: no 5xx, no wrong page, bounded keys, variants and memory`, async (t) => {
  const redis = await ownRedisForTest(t)
  const admin = new Redis(redis.url)
  t.teardown(() => admin.disconnect())
  const { app } = await stressApp(t, redis.url, { maxVariants: MAX_VARIANTS })
  const memoryBefore = await usedMemory(admin)
  // The plain page of the most flooded route, stored first; checked between batches.
  await app.inject('/q')
  await new Promise((resolve) => setTimeout(resolve, 50)) // its write is not awaited by the request
  const plainNotHit: number[] = []

  const requests = fuzzRequests(COUNT, SEED)
  const serverErrors: string[] = []
  const wrong: string[] = []
  const statuses = new Map<number, number>()
  for (let i = 0; i < requests.length; i += 20) {
    const batch = requests.slice(i, i + 20)
    const responses = await Promise.all(batch.map(async (request) => {
      const headers: Record<string, string> = {}
      for (const [name, value] of request.headers) headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`
      return await app.inject({ method: request.method, url: request.target, headers })
    }))
    responses.forEach((response, j) => {
      const request = batch[j]
      statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1)
      const what = `${request?.method} ${request?.target.slice(0, 120)} ${JSON.stringify(request?.headers).slice(0, 120)}`
      if (response.statusCode >= 500) serverErrors.push(`${response.statusCode} ${what}: ${response.body.slice(0, 200)}`)
      if (request?.method === 'GET' && response.statusCode === 200 && !rightBody(response)) wrong.push(`${String(response.headers['x-cache'])} ${what}`)
    })
    if ((await app.inject('/q')).headers['x-cache'] !== 'HIT') plainNotHit.push(i)
  }
  // And one key pushed past maxVariants on purpose: its least recently written variants go, never the plain page.
  for (let i = 0; i < MAX_VARIANTS * 3; i++) {
    await app.inject(`/q?cap=${i}`)
    if ((await app.inject('/q')).headers['x-cache'] !== 'HIT') plainNotHit.push(COUNT + i)
  }
  await new Promise((resolve) => setTimeout(resolve, 200)) // the last writes
  t.comment(`statuses: ${[...statuses].sort((a, b) => a[0] - b[0]).map(([status, n]) => `${status}: ${n}`).join(', ')}`)
  t.same(plainNotHit, [], 'the plain page of the flooded route stayed a HIT throughout')
  t.same(serverErrors, [], 'no 5xx')
  t.same(wrong, [], 'every 200 carries the body its own handler renders')
  t.ok((statuses.get(200) ?? 0) > COUNT / 4, 'most requests reached a handler')

  const keys = await census(admin, 'stress-test:', MAX_KEY_BYTES)
  t.ok(keys.keys > 0, `${keys.keys} keys stored`)
  t.ok(keys.maxKeyBytes <= MAX_KEY_BYTES, `every key <= ${MAX_KEY_BYTES} bytes (longest ${keys.maxKeyBytes})`)
  t.same(keys.over, [])
  t.ok(keys.maxFields <= MAX_VARIANTS + 1, `at most maxVariants variants (+ the version field) per key (most: ${keys.maxFields})`)
  t.ok(await variantCount(admin, 'stress-test:view//q') <= MAX_VARIANTS + 1, `/q, after ${MAX_VARIANTS * 3} distinct queries, holds at most ${MAX_VARIANTS + 1} variants`)
  const stats = app.cache.stats()
  const growth = await usedMemory(admin) - memoryBefore
  t.ok(growth <= Math.max(1, stats.writes) * 2_048, `used_memory grew ${growth} bytes for ${stats.writes} writes`)
})
