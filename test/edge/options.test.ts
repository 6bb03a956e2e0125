// The edge options are checked at registration, like every other option, and the demo blog reads EDGE_PURGE_URL.
import Fastify from 'fastify'
import t from 'tap'
import fastifyCache from '../../plugin/index.js'
import { normalizeOptions } from '../../plugin/options.js'
import { configFromEnv } from '../../demo-blog/config.js'

const bad: Array<[string, Record<string, unknown>, RegExp]> = [
  ['edge', { edge: 'surrogate-key' }, /expected \{ tagHeader, controlHeader \}, got "surrogate-key"/],
  ['edge', { edge: null }, /got null/],
  ['edge', { edge: ['surrogate-key'] }, /got an array/],
  ['edge.tagHeader', { edge: {} }, /is required: one of surrogate-key, cache-tag, edge-cache-tag/],
  ['edge.tagHeader', { edge: { tagHeader: 'Surrogate-Key' } }, /expected one of 'surrogate-key', 'cache-tag', 'edge-cache-tag'/],
  ['edge.tagHeader', { edge: { tagHeader: 'xkey' } }, /got "xkey"/],
  ['edge.controlHeader', { edge: { tagHeader: 'cache-tag', controlHeader: 'cache-control' } },
    /expected one of 'surrogate-control', 'cdn-cache-control'/],
  ['edge.tagHeaders', { edge: { tagHeaders: 'cache-tag' } }, /unknown option/],
  ['onPurge', { onPurge: 'http://varnish/' }, /expected a function/]
]

for (const [option, input, message] of bad) {
  t.test(`${JSON.stringify(input)} is refused at register, naming ${option}`, async (t) => {
    const app = Fastify()
    t.teardown(async () => await app.close())
    await t.rejects(async () => await app.register(fastifyCache, input as never), { code: 'FST_CACHE_INVALID_OPTION', option })
    t.throws(() => normalizeOptions(input as never), { code: 'FST_CACHE_INVALID_OPTION', option, message })
  })
}

t.test('good edge options, normalised', async (t) => {
  t.equal(normalizeOptions({}).edge, undefined)
  t.equal(normalizeOptions({}).onPurge, undefined)
  t.same(normalizeOptions({ edge: { tagHeader: 'surrogate-key' } }).edge, { tagHeader: 'surrogate-key', controlHeader: undefined })
  t.same(normalizeOptions({ edge: { tagHeader: 'edge-cache-tag', controlHeader: 'cdn-cache-control' } }).edge,
    { tagHeader: 'edge-cache-tag', controlHeader: 'cdn-cache-control' })
  const onPurge = (): void => {}
  t.equal(normalizeOptions({ onPurge }).onPurge, onPurge)
})

t.test('the demo blog: EDGE_PURGE_URL, when set', async (t) => {
  t.equal(configFromEnv({}).blog.edgePurgeUrl, undefined)
  t.equal(configFromEnv({ EDGE_PURGE_URL: '' }).blog.edgePurgeUrl, undefined)
  t.equal(configFromEnv({ EDGE_PURGE_URL: 'http://127.0.0.1:6081/' }).blog.edgePurgeUrl, 'http://127.0.0.1:6081/')
})
