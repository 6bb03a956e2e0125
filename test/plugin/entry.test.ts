import t from 'tap'
import { decodePage, encodePage } from '../../plugin/index.js'
import { decodeValue, encodeValue, etagOf, framePage, freshForMs, type PageEntry } from '../../plugin/entry.js'

const page: PageEntry = {
  status: 200,
  headers: { 'content-type': 'text/html; charset=utf-8', 'x-multi': ['a', 'b'] },
  body: Buffer.from([0x3c, 0x70, 0x3e, 0xff, 0x00, 0xfe]),
  createdAt: 1_700_000_000_000,
  ttlMs: 60_000,
  etag: '"abc"',
  staleMs: 5_000,
  tags: ['post:1']
}

t.test('a page round-trips with its body as raw bytes', async (t) => {
  const bytes = encodePage(page)
  const decoded = decodePage(bytes)
  t.same({ ...decoded, body: [...decoded.body] }, { ...page, body: [...page.body] })
  t.equal(decoded.body.buffer, bytes.buffer, 'the body is a view of the stored buffer, not a copy')
  t.ok(bytes.subarray(bytes.length - page.body.length).equals(page.body), 'the body is stored verbatim at the end')
})

t.test('a string body is framed as its UTF-8 bytes, once, and the body handed back is a view of the frame', async (t) => {
  const text = '<p>héllo ✓ 𝄞 \u0000</p>' // two-, three- and four-byte characters, and a NUL
  const { body: _body, ...meta } = page
  const framed = framePage(meta, text)
  const asBytes = Buffer.from(text)
  t.ok(framed.body.equals(asBytes))
  t.equal(framed.body.buffer, framed.bytes.buffer)
  t.equal(framed.body.byteOffset, framed.bytes.byteOffset + framed.bytes.length - framed.body.length,
    'a view of the frame\'s last bytes, not a copy')
  t.ok(framed.bytes.equals(encodePage({ ...page, body: asBytes })), 'the same bytes as framing the encoded body')
  const decoded = decodePage(framed.bytes)
  t.ok(decoded.body.equals(asBytes))
  t.equal(etagOf(text), etagOf(asBytes), 'a string and its bytes have one etag')
  t.equal(framed.etag, page.etag, 'an etag given is kept')
  t.equal(decoded.etag, page.etag)
  // Without one, it is computed from the framed body and written into the stored header.
  const { etag: _etag, ...noEtag } = meta
  for (const body of [text, asBytes]) {
    const own = framePage(noEtag, body)
    t.equal(own.etag, etagOf(asBytes))
    t.equal(decodePage(own.bytes).etag, etagOf(asBytes), 'the stored header carries it')
    t.ok(decodePage(own.bytes).body.equals(asBytes))
  }
  // A lone surrogate is sent, stored and validated as U+FFFD alike.
  t.equal(etagOf('a\ud800b'), etagOf(Buffer.from('a\ud800b')))
  t.ok(framePage(meta, 'a\ud800b').body.equals(Buffer.from('a\ud800b')))
  // A length that is not the body's is refused: the frame is not zeroed, and would carry old memory.
  t.throws(() => framePage(meta, text, asBytes.length + 1), RangeError)
  t.throws(() => framePage(meta, asBytes, asBytes.length + 1), RangeError)
  t.throws(() => framePage(meta, asBytes, asBytes.length - 1), RangeError, 'nor is a shorter one, which would cut it')
})

t.test('defaults for optional header fields', async (t) => {
  const decoded = decodePage(encodePage({ ...page, staleMs: 0, tags: [] }))
  t.equal(decoded.staleMs, 0)
  t.same(decoded.tags, [])
})

t.test('corrupt or foreign bytes are coded errors', async (t) => {
  const good = encodePage(page)
  const headerBytes = good.readUInt32BE(5)
  // Bytes of the right length whose header is not JSON.
  const brokenHeader = Buffer.from(good)
  brokenHeader.write('{nope'.padEnd(headerBytes), 9)
  const cases: Array<[string, Buffer, RegExp]> = [
    ['garbage', Buffer.from('hello world, not an entry'), /missing the FCE1 preamble/],
    ['empty', Buffer.alloc(0), /missing the FCE1 preamble/],
    ['truncated', good.subarray(0, 20), /truncated header/],
    ['a header longer than the bytes', Buffer.concat([good.subarray(0, 9), Buffer.from('{nope'), Buffer.alloc(100)]),
      /truncated header/],
    ['a value read as a page', encodeValue('k', 1, 1000), /expected a page entry/],
    ['a broken header', brokenHeader, /unreadable header/]
  ]
  for (const [name, bytes, message] of cases) {
    t.throws(() => decodePage(bytes), { code: 'FST_CACHE_CORRUPT_ENTRY', message }, name)
  }
  const brokenValueHeader = encodeValue('k', 'abc', 1000)
  brokenValueHeader.write('x'.repeat(brokenValueHeader.readUInt32BE(5)), 9)
  t.throws(() => decodeValue(brokenValueHeader), { code: 'FST_CACHE_CORRUPT_ENTRY', message: /unreadable header/ },
    'a value\'s header likewise')
  const badHeader = Buffer.from(good)
  badHeader.write('{"c":1,"t":2,"s":"x"}'.padEnd(badHeader.readUInt32BE(5)), 9)
  t.throws(() => decodePage(badHeader), { code: 'FST_CACHE_CORRUPT_ENTRY' }, 'a header of the wrong shape')
  const noTimes = Buffer.from(good)
  noTimes.write('[]'.padEnd(noTimes.readUInt32BE(5)), 9)
  t.throws(() => decodePage(noTimes), { code: 'FST_CACHE_CORRUPT_ENTRY' })
})

t.test('a truncated body, a bad status or a bad stored header is corrupt, not served', async (t) => {
  const good = encodePage(page)
  t.throws(() => decodePage(good.subarray(0, good.length - 1)), { code: 'FST_CACHE_CORRUPT_ENTRY' }, 'one byte short')
  t.throws(() => decodePage(Buffer.concat([good, Buffer.from('x')])), { code: 'FST_CACHE_CORRUPT_ENTRY' }, 'one byte long')
  for (const [name, bad] of [
    ['status 0', { ...page, status: 0 }],
    ['status 1000', { ...page, status: 1000 }],
    ['a header name with a space', { ...page, headers: { 'bad name': 'x' } }],
    ['a header value with a newline', { ...page, headers: { 'x-a': 'line\r\nset-cookie: a=b' } }],
    ['a non-string header value', { ...page, headers: { 'x-a': 5 as unknown as string } }],
    ['an etag with a newline', { ...page, etag: '"a"\n' }]
  ] as const) {
    t.throws(() => decodePage(encodePage(bad as PageEntry)), { code: 'FST_CACHE_CORRUPT_ENTRY' }, name)
  }
})

t.test('values are JSON, never evaluated', async (t) => {
  const value = { a: [1, 'two', null], b: { nested: true } }
  t.same(decodeValue(encodeValue('k', value, 1000)).value, value)
  t.throws(() => encodeValue('k', undefined, 1000), { code: 'FST_CACHE_INVALID_VALUE' })
  t.throws(() => encodeValue('k', () => 1, 1000), { code: 'FST_CACHE_INVALID_VALUE' })
  const cyclic: Record<string, unknown> = {}
  cyclic.self = cyclic
  t.throws(() => encodeValue('k', cyclic, 1000), { code: 'FST_CACHE_INVALID_VALUE' })
  t.throws(() => encodeValue('k', 10n, 1000), { code: 'FST_CACHE_INVALID_VALUE' })
  const broken = encodeValue('k', 'abc', 1000)
  t.throws(() => decodeValue(broken.subarray(0, broken.length - 2)), { code: 'FST_CACHE_CORRUPT_ENTRY' })
  t.throws(() => decodeValue(encodePage(page)), { code: 'FST_CACHE_CORRUPT_ENTRY' })
})

t.test('etags and freshness', async (t) => {
  t.equal(etagOf(Buffer.from('a')), etagOf(Buffer.from('a')))
  t.not(etagOf(Buffer.from('a')), etagOf(Buffer.from('b')))
  t.match(etagOf(Buffer.from('a')), /^"[A-Za-z0-9_-]+"$/)
  t.equal(freshForMs({ createdAt: 1000, ttlMs: 500 }, 1200), 300)
  t.ok(freshForMs({ createdAt: 1000, ttlMs: 500 }, 1600) < 0)
})
