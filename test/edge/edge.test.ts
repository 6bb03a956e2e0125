// plugin/edge.ts on its own: how tags are spelled for each CDN header, and how its limits are kept.
import { createHash } from 'node:crypto'
import t from 'tap'
import {
  catchAllToken, EDGE_TAG_HEADERS, EDGE_TAG_RULES, edgeControlValue, edgeTagValue, edgeToken, purgeTokens
} from '../../plugin/edge.js'
import { Keyspace, toStoreKey } from '../../plugin/keyspace.js'

/** The digest token of a value, computed here from its definition: `~` and 22 base64url characters of its sha256. */
function digestToken (value: string): string {
  return '~' + createHash('sha256').update(value).digest('base64url').slice(0, 22)
}

t.test('tags and page keys that a header allows go out as they are', async (t) => {
  for (const header of ['surrogate-key', 'cache-tag'] as const) {
    t.equal(edgeToken('post:7', header), 'post:7')
    t.equal(edgeToken('view//post/7', header), 'view//post/7')
    t.equal(edgeToken('a-b_c.d~e|f!', header), 'a-b_c.d~e|f!')
  }
  t.equal(edgeToken('fall-sale', 'edge-cache-tag'), 'fall-sale')
  t.equal(edgeToken("a&b'c^d$e!f`g#h%i.j+k~l_m|n", 'edge-cache-tag'), "a&b'c^d$e!f`g#h%i.j+k~l_m|n", "Akamai's whole alphabet")
})

t.test('a character the header does not allow is percent-encoded, as UTF-8', async (t) => {
  t.equal(edgeToken('two words', 'surrogate-key'), 'two%20words', 'a space would split the key')
  t.equal(edgeToken('a,b', 'surrogate-key'), 'a%2Cb', 'xkey splits on commas too')
  t.equal(edgeToken('a,b', 'cache-tag'), 'a%2Cb')
  t.equal(edgeToken('café', 'cache-tag'), 'caf%C3%A9')
  t.equal(edgeToken('緩存', 'surrogate-key'), '%E7%B7%A9%E5%AD%98')
  t.equal(edgeToken('tab\there', 'surrogate-key'), 'tab%09here')
  t.equal(edgeToken('post:7', 'edge-cache-tag'), 'post%3A7', "Akamai refuses ':'")
  t.equal(edgeToken('view//about', 'edge-cache-tag'), 'view%2F%2Fabout', "and '/'")
  t.equal(edgeToken('a*b=c@d', 'edge-cache-tag'), 'a%2Ab%3Dc%40d')
})

t.test('a token too long for the header is a short digest of the value, the same every time', async (t) => {
  const fastlyMax = 'k'.repeat(1024)
  t.equal(edgeToken(fastlyMax, 'surrogate-key'), fastlyMax, "1,024 bytes is Fastly's limit, and allowed")
  t.equal(edgeToken(fastlyMax + 'k', 'surrogate-key'), digestToken(fastlyMax + 'k'))
  t.equal(edgeToken(fastlyMax + 'k', 'cache-tag'), digestToken(fastlyMax + 'k'))
  const akamaiMax = 'a'.repeat(128)
  t.equal(edgeToken(akamaiMax, 'edge-cache-tag'), akamaiMax, "128 characters is Akamai's limit")
  t.equal(edgeToken(akamaiMax + 'a', 'edge-cache-tag'), digestToken(akamaiMax + 'a'))
  // Encoding counts: 43 characters of ':' are 129 once encoded.
  t.equal(edgeToken(':'.repeat(43), 'edge-cache-tag'), digestToken(':'.repeat(43)))
  t.equal(edgeToken(':'.repeat(42), 'edge-cache-tag'), '%3A'.repeat(42))
  const digest = edgeToken('x'.repeat(5000), 'surrogate-key')
  t.equal(digest.length, 23)
  t.match(digest, /^~[A-Za-z0-9_-]{22}$/, 'a digest is allowed by every header')
  t.equal(edgeToken(digest, 'edge-cache-tag'), digest)
  t.not(edgeToken('x'.repeat(5000), 'surrogate-key'), edgeToken('x'.repeat(5001), 'surrogate-key'))
})

t.test('surrogate-key: space-separated, 16,384 bytes at most, cut at the last token that fits', async (t) => {
  t.same(edgeTagValue(['a', 'b', 'c'], 'surrogate-key'), { value: 'a b c', dropped: 0 })
  t.same(edgeTagValue(['a', 'b', 'a', 'c', 'b'], 'surrogate-key'), { value: 'a b c', dropped: 0 }, 'no repeats')
  const token = 'k'.repeat(1023) // with its separator, 1,024 bytes
  const tokens = Array.from({ length: 20 }, (_, i) => token.slice(0, -2) + String(i).padStart(2, '0'))
  const { value, dropped } = edgeTagValue(tokens, 'surrogate-key')
  t.equal(value.split(' ').length, 16, '16 keys of 1,023 bytes and 15 spaces: 16,383 bytes')
  t.equal(Buffer.byteLength(value), 16 * 1023 + 15)
  t.ok(Buffer.byteLength(value) <= 16_384)
  t.equal(dropped, 4)
  t.same(value.split(' '), tokens.slice(0, 16), 'the first ones are kept, in order')
  t.same(edgeTagValue([], 'surrogate-key'), { value: '', dropped: 0 })
})

t.test('cache-tag: comma-separated, 16,000 bytes at most', async (t) => {
  t.same(edgeTagValue(['a', 'b'], 'cache-tag'), { value: 'a,b', dropped: 0 })
  const tokens = Array.from({ length: 20 }, (_, i) => String(i).padStart(999, 't')) // 1,000 bytes with the comma
  const { value, dropped } = edgeTagValue(tokens, 'cache-tag')
  t.equal(value.split(',').length, 16)
  t.equal(Buffer.byteLength(value), 16 * 999 + 15)
  t.ok(Buffer.byteLength(value) <= 16_000)
  t.equal(dropped, 4)
  t.equal(EDGE_TAG_RULES['cache-tag'].maxHeaderBytes, 16_000)
})

t.test('edge-cache-tag: comma-separated, 128 tags at most', async (t) => {
  const tokens = Array.from({ length: 130 }, (_, i) => `t${i}`)
  const { value, dropped } = edgeTagValue(tokens, 'edge-cache-tag')
  t.equal(value.split(',').length, 128)
  t.equal(value.split(',').at(-1), 't127')
  t.equal(dropped, 2)
  const full = Array.from({ length: 128 }, (_, i) => String(i).padStart(128, 'x'))
  t.equal(edgeTagValue(full, 'edge-cache-tag').value.split(',').length, 128, '128 tags of 128 characters fit')
})

t.test('the control header is the ttl in whole seconds', async (t) => {
  t.equal(edgeControlValue(1_800_000), 'max-age=1800')
  t.equal(edgeControlValue(1_500), 'max-age=1')
  t.equal(edgeControlValue(999), 'max-age=0')
})

t.test('purge tokens: the same spelling as the response header, from the keys the API takes', async (t) => {
  const keyspace = new Keyspace('blog:')
  t.equal(catchAllToken(keyspace, 'surrogate-key'), 'blog:')
  t.equal(catchAllToken(keyspace, 'edge-cache-tag'), 'blog%3A')
  t.same(purgeTokens({ keys: [], tags: [], all: true }, keyspace, 'surrogate-key'), ['blog:'], 'clear purges the catch-all')
  t.same(purgeTokens({ keys: ['view//', 'view//post/1'], tags: ['post:1', 'a b'], all: false }, keyspace, 'surrogate-key'),
    ['view//', 'view//post/1', 'post:1', 'a%20b'])
  t.same(purgeTokens({ keys: ['view//'], tags: ['view//'], all: false }, keyspace, 'surrogate-key'), ['view//'], 'no repeats')
  t.same(purgeTokens({ keys: ['view//post/1'], tags: ['post:1'], all: false }, keyspace, 'edge-cache-tag'),
    ['view%2F%2Fpost%2F1', 'post%3A1'])
  // A key the store hashes (past 250 bytes) is purged by the name it is stored under, as its pages were tagged.
  const long = 'view//' + 'p'.repeat(300)
  const stored = toStoreKey('blog:', long).slice('blog:'.length)
  t.not(stored, long)
  t.same(purgeTokens({ keys: [long], tags: [], all: false }, keyspace, 'cache-tag'), [edgeToken(stored, 'cache-tag')])
})

t.test('every header has rules', async (t) => {
  t.same(Object.keys(EDGE_TAG_RULES).sort(), [...EDGE_TAG_HEADERS].sort())
})
