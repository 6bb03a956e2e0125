import t from 'tap'
import { gzipSync } from 'node:zlib'
import { LocalTier } from '../../plugin/l1.js'
import type { PageEntry } from '../../plugin/entry.js'
import { build } from '../helpers/app.js'
import { redisForFile } from '../helpers/redis.js'

const { redis, client } = await redisForFile(t)

/** A page stored compressed, as L1 holds it: gzip only, the identity body empty. */
function compressedEntry (text: string): PageEntry {
  return {
    status: 200,
    headers: { 'content-type': 'text/html; charset=utf-8' },
    body: Buffer.alloc(0),
    createdAt: Date.now(),
    ttlMs: 60_000,
    etag: '"e"',
    staleMs: 0,
    tags: [],
    encoded: { gzip: gzipSync(text) }
  }
}

t.test('L1 keeps the identity bytes of a page it holds once made, and counts them against maxBytes', async (t) => {
  const identity = Buffer.from('x'.repeat(3_000))
  // Room for both compressed pages (a few dozen bytes each, plus overhead), not for one of them with its identity too.
  const tier = new LocalTier({ maxBytes: 2_000, ttlMs: 60_000 })
  const a = compressedEntry('x'.repeat(3_000))
  const b = compressedEntry('y'.repeat(3_000))
  tier.set('view//a\n', a, 1)
  tier.set('view//b\n', b, 1)
  const heldA = tier.get('view//a\n')?.entry
  t.ok(heldA?.encoded !== undefined, 'held compressed')
  t.equal(tier.keptIdentity(heldA?.encoded as NonNullable<PageEntry['encoded']>), undefined, 'nothing kept before a client asks')
  // Fits alone within the bound: kept, and the other page makes room.
  const small = new LocalTier({ maxBytes: 10_000, ttlMs: 60_000 })
  small.set('view//a\n', a, 1)
  small.set('view//b\n', b, 1)
  const smallA = small.get('view//a\n')?.entry.encoded as NonNullable<PageEntry['encoded']>
  small.keepIdentity(smallA, identity)
  t.equal(small.keptIdentity(smallA), identity, 'kept beside the page')
  t.equal(small.get('view//a\n')?.entry.encoded, smallA, 'the page itself is unchanged')
  t.ok(small.get('view//b\n') !== undefined, 'both fit within 10 KB')
  // Counted: past the bound, the page and its identity go rather than overrun it.
  tier.keepIdentity(heldA?.encoded as NonNullable<PageEntry['encoded']>, identity)
  t.equal(tier.get('view//a\n'), undefined, 'a page whose identity would pass maxBytes is not kept with it')
  t.ok(tier.get('view//b\n') !== undefined, 'the other page stays')
})

t.test('identity bytes are kept only for the page L1 holds now', async (t) => {
  const tier = new LocalTier({ maxBytes: 1_000_000, ttlMs: 60_000 })
  const identity = Buffer.from('old page')
  const never = compressedEntry('never held')
  tier.keepIdentity(never.encoded as NonNullable<PageEntry['encoded']>, identity)
  t.equal(tier.keptIdentity(never.encoded as NonNullable<PageEntry['encoded']>), undefined, 'codings L1 never held')
  const old = compressedEntry('old page')
  tier.set('view//p\n', old, 1)
  const heldOld = tier.get('view//p\n')?.entry.encoded as NonNullable<PageEntry['encoded']>
  tier.set('view//p\n', compressedEntry('new page'), 2)
  tier.keepIdentity(heldOld, identity)
  t.equal(tier.keptIdentity(heldOld), undefined, 'a page replaced since keeps nothing')
  t.equal(tier.get('view//p\n')?.version, 2, 'and the new page is left as it is')
  const gone = compressedEntry('gone')
  tier.set('view//gone\n', gone, 1)
  const heldGone = tier.get('view//gone\n')?.entry.encoded as NonNullable<PageEntry['encoded']>
  tier.deleteKeys(['view//gone'])
  tier.keepIdentity(heldGone, identity)
  t.equal(tier.get('view//gone\n'), undefined, 'a purged page is not brought back')
})

t.test('an identity client gets the page from L1 as the handler made it, a gzip client the stored gzip', async (t) => {
  const prefix = `${redis.prefix}l1-identity:`
  const app = await build(t, { redis, cache: { prefix, l1: true } })
  const page = '<p>' + 'identity client '.repeat(200) + '</p>'
  app.get('/page', { config: { cache: { ttl: 60 } } }, async (_request, reply) => reply.type('text/html').send(page))
  t.equal((await app.inject('/page')).headers['x-cache'], 'MISS')
  const first = await app.inject('/page')
  t.equal(first.headers['x-cache'], 'HIT')
  t.equal(first.headers['content-encoding'], undefined)
  t.equal(first.body, page)
  // Gone from Redis behind the plugin's back: the page and the identity bytes it kept come from L1.
  await client.del(prefix + 'view//page')
  const second = await app.inject('/page')
  t.equal(second.headers['x-cache'], 'HIT')
  t.match(second.headers['cache-status'], /detail=l1/)
  t.equal(second.body, page, 'the identity bytes, as the handler made them')
  const gzip = await app.inject({ url: '/page', headers: { 'accept-encoding': 'gzip' } })
  t.equal(gzip.headers['content-encoding'], 'gzip', 'a gzip client still gets the stored gzip')
})
