import t from 'tap'
import { decide } from '../../plugin/lookup.js'
import { normalizeRouteOptions } from '../../plugin/options.js'

const entry = { status: 200, headers: {}, body: Buffer.alloc(0), createdAt: 1_000, ttlMs: 10_000, etag: '"e"', staleMs: 0, tags: [] }
const route = normalizeRouteOptions({ staleWhileRevalidate: 5, grace: 20 }, { defaultTtl: 300 }, 'GET /')
const plain = normalizeRouteOptions(true, { defaultTtl: 300 }, 'GET /plain')

t.test('decide: what a stored entry is worth at a given time', async (t) => {
  t.equal(decide(undefined, 1_000, route), 'miss', 'nothing stored')
  t.equal(decide(entry, 5_000, route), 'hit', 'fresh')
  t.equal(decide(entry, 10_999, route), 'hit', 'fresh up to its last millisecond')
  t.equal(decide(entry, 11_000, route), 'stale', 'stale from its ttl on')
  t.equal(decide(entry, 11_001, route), 'stale', 'just past the ttl: within stale-while-revalidate')
  t.equal(decide(entry, 16_001, route), 'grace', 'past stale-while-revalidate, within grace')
  t.equal(decide(entry, 31_000, route), 'miss', 'past grace')
  t.equal(decide(entry, 11_001, plain), 'miss', 'a route with neither: stale is a miss')
})
