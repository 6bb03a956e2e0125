import t from 'tap'
import { brotliCompressSync, brotliDecompressSync, deflateSync, gunzipSync, gzipSync } from 'node:zlib'
import { compressBoth, decodeCoding, etagFor, identityOf, isCompressible, negotiateCoding } from '../../plugin/encodings.js'
import { decodePage, encodePage, frameEncodedPage, type PageEntry } from '../../plugin/entry.js'
import { FST_CACHE_CORRUPT_ENTRY } from '../../plugin/errors.js'

const html = Buffer.from('<!doctype html><p>' + 'héllo, world ✓ '.repeat(400) + '</p>')

t.test('Accept-Encoding is read with its q-values; identity when nothing fits', async (t) => {
  const cases: Array<[string | undefined, string | undefined]> = [
    [undefined, undefined],
    ['', undefined],
    ['identity', undefined],
    ['*;q=0, identity', undefined],
    ['deflate', undefined],
    ['br', 'br'],
    ['gzip', 'gzip'],
    ['gzip, deflate, br', 'br'],
    ['gzip;q=1, br;q=0.5', 'gzip'],
    ['br;q=0, gzip', 'gzip'],
    ['*', 'br'],
    ['GZIP', 'gzip']
  ]
  const both = { br: Buffer.from('b'), gzip: Buffer.from('g') }
  for (const [header, want] of cases) t.equal(negotiateCoding(header, both), want, `${String(header)} → ${String(want)}`)
  const gzipOnly = { gzip: Buffer.from('g') }
  t.equal(negotiateCoding('br, gzip', gzipOnly), 'gzip', 'a page kept in gzip only: gzip')
  t.equal(negotiateCoding('br', gzipOnly), undefined, 'a client that takes br alone gets identity')
})

t.test('compressible types are text and structured text; already compressed formats are not', async (t) => {
  for (const type of ['text/html; charset=utf-8', 'text/css', 'application/json', 'application/problem+json',
    'application/javascript', 'image/svg+xml', 'application/rss+xml', 'application/xml']) t.ok(isCompressible(type), type)
  for (const type of ['image/png', 'image/jpeg', 'application/zip', 'application/gzip', 'video/mp4', 'font/woff2',
    'application/octet-stream', undefined, 42]) t.notOk(isCompressible(type), String(type))
})

t.test('both codings decode to the identity bytes, and identity is recovered from the stored gzip', async (t) => {
  const encoded = await compressBoth(html)
  t.ok(brotliDecompressSync(encoded.br as Buffer).equals(html))
  t.ok(gunzipSync(encoded.gzip).equals(html))
  t.ok((encoded.br as Buffer).length + encoded.gzip.length <= html.length / 2, 'both together take at most half the identity bytes')
  t.ok((await identityOf(encoded)).equals(html))
  // A small page, both codings together over half its bytes: br is not kept.
  const small = Buffer.from('<p>' + Array.from({ length: 120 }, (_, i) => `word${i * 7919 % 1000}`).join(' ') + '</p>')
  const smallEncoded = await compressBoth(small)
  t.equal(smallEncoded.br, undefined, 'br does not earn its bytes on a page this small')
  t.ok(gunzipSync(smallEncoded.gzip).equals(small))
})

t.test('a body compressed elsewhere is decoded by its coding; an unknown coding is not', async (t) => {
  t.ok((await decodeCoding('gzip', gzipSync(html)))?.equals(html))
  t.ok((await decodeCoding(' X-GZIP ', gzipSync(html)))?.equals(html))
  t.ok((await decodeCoding('br', brotliCompressSync(html)))?.equals(html))
  t.ok((await decodeCoding('deflate', deflateSync(html)))?.equals(html))
  t.equal(await decodeCoding('compress', html), undefined)
  await t.rejects(decodeCoding('gzip', html), 'garbage is an error, not bytes')
})

t.test('each coding of a strong etag is a validator of its own; a weak one is shared', async (t) => {
  t.equal(etagFor('"abc"', undefined), '"abc"')
  t.equal(etagFor('"abc"', 'br'), '"abc-br"')
  t.equal(etagFor('"abc"', 'gzip'), '"abc-gzip"')
  t.equal(etagFor('W/"abc"', 'br'), 'W/"abc"')
})

t.test('a page stored compressed frames br then gzip, and every field is checked when read back', async (t) => {
  const encoded = await compressBoth(html)
  const meta = {
    status: 200,
    headers: { 'content-type': 'text/html' },
    createdAt: 1_000,
    ttlMs: 60_000,
    etag: '"e"',
    staleMs: 0,
    tags: [],
    varyOn: [['accept-language', 'fr'], ['x-theme', null]] as const
  }
  const bytes = frameEncodedPage(meta, encoded)
  const page = decodePage(bytes)
  t.equal(page.body.length, 0, 'no identity bytes are stored')
  t.ok(page.encoded?.br?.equals(encoded.br as Buffer))
  t.ok(page.encoded?.gzip.equals(encoded.gzip))
  t.same(page.varyOn, meta.varyOn)
  t.ok(encodePage(page).equals(bytes), 'encodePage frames a compressed page the same way')
  const entry: PageEntry = { ...meta, body: html }
  t.same(decodePage(encodePage(entry)).varyOn, meta.varyOn, 'an identity page keeps its vary values too')

  const header = (patch: Record<string, unknown>): Buffer => {
    const headerBytes = bytes.readUInt32BE(5)
    const json = { ...JSON.parse(bytes.toString('utf8', 9, 9 + headerBytes)), ...patch }
    const text = Buffer.from(JSON.stringify(json))
    const out = Buffer.alloc(9 + text.length + bytes.length - 9 - headerBytes)
    bytes.copy(out, 0, 0, 5)
    out.writeUInt32BE(text.length, 5)
    text.copy(out, 9)
    bytes.copy(out, 9 + text.length, 9 + headerBytes)
    return out
  }
  t.ok(decodePage(header({})).encoded, 'the patching itself keeps a good entry good')
  const gzipOnly = decodePage(frameEncodedPage(meta, { gzip: encoded.gzip }))
  t.equal(gzipOnly.encoded?.br, undefined, 'a page kept in gzip only reads back so')
  t.ok(gzipOnly.encoded?.gzip.equals(encoded.gzip))
  const total = (encoded.br as Buffer).length + encoded.gzip.length
  const corrupt = [
    { z: [(encoded.br as Buffer).length, encoded.gzip.length + 1] },
    { z: [total, 0] },
    { z: [-1, total + 1] },
    { z: 'br' },
    { z: [1.5, total - 1.5] },
    { v: 'accept-language' },
    { v: [] },
    { v: [['Accept-Language', 'fr']] },
    { v: [['accept-language', 'fr\n']] },
    { v: [['accept-language']] },
    { v: [['accept-language', 3]] },
    { v: Array.from({ length: 17 }, (_, i) => [`x-h${i}`, null]) }
  ]
  for (const patch of corrupt) t.throws(() => decodePage(header(patch)), FST_CACHE_CORRUPT_ENTRY, JSON.stringify(patch).slice(0, 60))
})
