// Stress scenario 6: properties of the key function on fake requests { url, headers } (see stress/lib/key-oracle.ts).
// test/plugin/key.test.ts checks toStoreKey and canonicalQuery on their own; these go through requestKey, at the
// level of whole URLs in all their equivalent spellings, and against what Fastify hands the handler.
import t from 'tap'
import fc from 'fast-check'
import type { FastifyRequest } from 'fastify'
import { requestKey } from '../../plugin/key.js'
import { KEYED_ROUTES, PREFIX, parserProbe, parserProperty, urlProperty } from '../../stress/lib/key-oracle.js'

t.test('property: two different normalised URLs never share a key, and equal ones always do', async (t) => {
  fc.assert(urlProperty, { numRuns: 3_000 })
  t.pass('3000 pairs of URLs on five route shapes')
})

t.test('the README\'s examples, through requestKey', async (t) => {
  const [none, all, page] = KEYED_ROUTES
  const key = (url: string, route = none, headers = {}): string | undefined => {
    const found = requestKey({ url, headers } as unknown as FastifyRequest, route!.route, PREFIX)
    return found === null ? undefined : `${found.storeKey} ${found.variant}`
  }
  t.equal(key('/post/%31'), key('/post/1'), '/post/%31 and /post/1 share a key')
  t.not(key('/a%2Fb'), key('/a/b'), '/a%2Fb and /a/b never do')
  t.equal(key('/?page=2'), undefined, 'an unkeyed query bypasses')
  t.equal(key('/?b=2&a=1', all), key('/?a=1&b=2', all), 'queryString: true sorts by name')
  t.not(key('/?a=2&a=1', all), key('/?a=1&a=2', all), 'repeated parameters keep their order')
  t.equal(key('/?page=2&utm=x', page), key('/?page=2', page), "['page'] keys only page")
})

// Found by this property and the fuzzer (stress/README.md, findings 1 and 2), fixed in plugin/key.ts since:
// URLSearchParams dropped a leading '?' and turned bytes that are not UTF-8 into U+FFFD, while Fastify's parser keeps
// both as sent, so `/??page=2` stored page 1 under `?page=2`.
t.test('property: a different query for the handler never shares a key', async (t) => {
  const app = await parserProbe()
  t.teardown(async () => await app.close())
  const details = await fc.check(parserProperty(app), { numRuns: 1_000, seed: 42 })
  t.notOk(details.failed, `no counterexample${details.failed ? ` (found ${JSON.stringify(details.counterexample)})` : ''}`)
  const seen = async (url: string): Promise<{ seen: string, key: string }> => (await app.inject(url)).json()
  const [victim, attacker] = await Promise.all([seen('/page?page=2'), seen('/page??page=2')])
  t.not(attacker?.seen, victim?.seen, 'the handler sees page=2 in one and no page in the other')
  t.not(attacker?.key, victim?.key, 'so they must not share a key')
  const [replacement, invalid] = await Promise.all([seen('/all?a=%EF%BF%BD'), seen('/all?a=%C0')])
  t.not(invalid?.key, replacement?.key, '?a=%C0 and ?a=%EF%BF%BD must not share a key')
})
