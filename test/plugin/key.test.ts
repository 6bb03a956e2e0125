import t from 'tap'
import fc from 'fast-check'
import { canonicalQuery, normalizePath, pageKey, requestKey, variantOf } from '../../plugin/key.js'
import { toStoreKey } from '../../plugin/keyspace.js'
import { normalizeRouteOptions } from '../../plugin/options.js'
import type { FastifyRequest } from 'fastify'
import { MAX_KEY_BYTES } from '../../plugin/index.js'

t.test('the page key is Flask-Caching\'s view/<path>', async (t) => {
  t.equal(pageKey('/'), 'view//')
  t.equal(pageKey('/post/42'), 'view//post/42')
  t.equal(pageKey('/post/42?x=1'), 'view//post/42', 'the query is not part of the base key')
})

t.test('paths: unreserved escapes decode, reserved ones never do', async (t) => {
  t.equal(normalizePath('/post/%31'), '/post/1')
  t.equal(normalizePath('/a%2fb'), '/a%2Fb', 'an encoded slash stays encoded, upper-cased')
  t.not(normalizePath('/a%2Fb'), normalizePath('/a/b'))
  t.equal(normalizePath('/%7euser'), '/~user')
  t.equal(normalizePath('/%E4%B8%AD'), '/%E4%B8%AD')
  t.equal(normalizePath('/%zz'), '/%zz', 'a malformed escape is kept as is')
})

t.test('query strings: sorted, decoded, filtered to the keyed names', async (t) => {
  t.same(canonicalQuery('b=2&a=1', 'all'), { query: 'a=1&b=2', extra: false })
  t.same(canonicalQuery('a=2&a=1', 'all'), { query: 'a=2&a=1', extra: false }, 'repeated names keep their order')
  t.same(canonicalQuery('a=%31', 'all'), canonicalQuery('a=1', 'all'))
  t.same(canonicalQuery('page=2&utm=x', new Set(['page'])), { query: 'page=2', extra: true })
  t.same(canonicalQuery('page=2', new Set(['page'])), { query: 'page=2', extra: false })
})

t.test('variants: nothing keyed is the plain variant; missing and empty headers differ', async (t) => {
  t.equal(variantOf('', []), '')
  t.not(variantOf('', [undefined]), variantOf('', ['']))
  t.not(variantOf('a=1', []), variantOf('a=2', []))
  t.equal(variantOf('a=1', ['en']), variantOf('a=1', ['en']))
})

t.test('long keys are hashed to at most MAX_KEY_BYTES, keeping a readable head', async (t) => {
  const long = 'view//' + 'x'.repeat(1_000)
  const key = toStoreKey('fastify-cache:', long)
  t.ok(Buffer.byteLength(key) <= MAX_KEY_BYTES)
  t.ok(key.startsWith('fastify-cache:view//xxxx'))
  t.not(toStoreKey('p:', long + 'a'), toStoreKey('p:', long + 'b'))
  const unicode = toStoreKey('p:', 'view//' + '中'.repeat(300))
  t.ok(Buffer.byteLength(unicode) <= MAX_KEY_BYTES)
  t.notMatch(unicode, /\uFFFD/, 'no character is cut in half')
  t.equal(toStoreKey('p:', 'short'), 'p:short')
})

t.test('toStoreKey refuses empty and non-string keys with a coded error', async (t) => {
  t.throws(() => toStoreKey('p:', ''), { code: 'FST_CACHE_INVALID_KEY' })
  t.throws(() => toStoreKey('p:', 42 as unknown as string), { code: 'FST_CACHE_INVALID_KEY' })
})

t.test('property: different keys never share a store key, and none passes the bound', async (t) => {
  fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 600 }), fc.string({ unit: 'binary', maxLength: 600 }),
    (a, b) => {
      fc.pre(a.length > 0 && b.length > 0)
      const ka = toStoreKey('fastify-cache:', a)
      const kb = toStoreKey('fastify-cache:', b)
      return Buffer.byteLength(ka) <= MAX_KEY_BYTES && (a === b) === (ka === kb)
    }), { numRuns: 2_000 })
  t.pass('2000 random pairs')
})

t.test('property: different canonical queries never share a variant', async (t) => {
  const param = fc.tuple(fc.string({ minLength: 1, maxLength: 5 }), fc.string({ maxLength: 5 }))
  fc.assert(fc.property(fc.array(param, { maxLength: 5 }), fc.array(param, { maxLength: 5 }), (a, b) => {
    const qa = canonicalQuery(new URLSearchParams(a).toString(), 'all').query
    const qb = canonicalQuery(new URLSearchParams(b).toString(), 'all').query
    return (qa === qb) === (variantOf(qa, []) === variantOf(qb, []))
  }), { numRuns: 2_000 })
  t.pass('2000 random pairs')
})

t.test('requestKey: only origin-form targets get a key, and only the canonical spelling writes', async (t) => {
  const route = normalizeRouteOptions({ queryString: ['page'] }, { defaultTtl: 60 }, 'GET /x')
  const keyOf = (url: string): ReturnType<typeof requestKey> => requestKey({ url, headers: {} } as unknown as FastifyRequest, route, 'p:')
  for (const target of ['*', 'http://evil.example/post/1', '/post/1#x', '/#1']) t.equal(keyOf(target), null, `${target} bypasses`)
  t.same(keyOf('/post/1'), { storeKey: 'p:view//post/1', variant: '', storable: true })
  t.same(keyOf('/post/%31'), { storeKey: 'p:view//post/1', variant: '', storable: false })
  t.same(keyOf('/post/%e4%b8%ad'), { storeKey: 'p:view//post/%E4%B8%AD', variant: '', storable: false })
  t.equal(keyOf('/?page=2&utm=1')?.storable, false)
  t.equal(keyOf('/?page=2')?.storable, true)
})
