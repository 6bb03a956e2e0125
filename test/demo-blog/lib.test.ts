import { randomBytes } from 'node:crypto'
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { hitRatioChart } from '../../demo-blog/lib/chart.js'
import { hashPassword, verifyNobody, verifyPassword } from '../../demo-blog/lib/passwords.js'
import { MAX_BODY_BYTES, validatePostForm } from '../../demo-blog/lib/post-form.js'
import { redactUrl } from '../../demo-blog/lib/redis-probe.js'
import { loadOrCreateSessionKey, parseSessionKey, SESSION_KEY_FILE } from '../../demo-blog/lib/session-key.js'
import { StatsHistory } from '../../demo-blog/lib/stats-history.js'
import { configFromEnv } from '../../demo-blog/config.js'
import { formatDuration } from '../../demo-blog/plugins/view.js'
import { tempDir } from './fixtures/blog.js'

t.test('StatsHistory: per-interval ratios in a ring buffer, oldest first', async (t) => {
  const history = new StatsHistory(3)
  history.start({ hits: 10, misses: 10, bypasses: 0 })
  t.same(history.samples(), [], 'empty at first')
  t.same(history.record({ hits: 13, misses: 11, bypasses: 2 }, 1000),
    { at: 1000, hits: 3, misses: 1, bypasses: 2, ratio: 0.75 }, 'the interval, not the totals')
  t.equal(history.record({ hits: 13, misses: 11, bypasses: 5 }, 2000).ratio, null, 'no lookups: no ratio')
  history.record({ hits: 13, misses: 12, bypasses: 5 }, 3000)
  history.record({ hits: 15, misses: 12, bypasses: 5 }, 4000)
  t.same(history.samples().map((s) => s.at), [2000, 3000, 4000], 'the oldest sample dropped out')
  t.same(history.samples().map((s) => s.ratio), [null, 0, 1])
  t.equal(history.record({ hits: 0, misses: 0, bypasses: 0 }, 5000).hits, 0, 'a counter reset is no negative interval')
  t.throws(() => new StatsHistory(1))
})

t.test('hitRatioChart: an SVG of numbers, gaps for idle intervals', async (t) => {
  const options = { intervalMs: 10_000, capacity: 60, now: 600_000 }
  const empty = hitRatioChart([], options)
  t.match(empty, /^<svg [^>]*viewBox="0 0 640 200"/)
  t.match(empty, /no lookups yet/)
  t.match(empty, /10 min ago/)
  t.notMatch(empty, /polyline/)

  const samples = [
    { at: 560_000, hits: 1, misses: 1, bypasses: 0, ratio: 0.5 },
    { at: 570_000, hits: 2, misses: 0, bypasses: 0, ratio: 1 },
    { at: 580_000, hits: 0, misses: 0, bypasses: 0, ratio: null },
    { at: 590_000, hits: 0, misses: 1, bypasses: 0, ratio: 0 }
  ]
  const chart = hitRatioChart(samples, options)
  const lines = [...chart.matchAll(/<polyline class="ratio"[^>]*points="([^"]+)"/g)]
  t.equal(lines.length, 1, 'the first two samples form a line')
  const points = (lines[0]?.[1] ?? '').split(' ').map((p) => p.split(',').map(Number))
  t.equal(points.length, 2)
  t.ok((points[0]?.[1] ?? 0) > (points[1]?.[1] ?? 0), 'a higher ratio is drawn higher')
  t.equal([...chart.matchAll(/<circle class="point"/g)].length, 1, 'the sample after the gap is a point')
  t.match(chart, /<circle class="point" cx="[\d.]+" cy="172"/, 'ratio 0 sits on the bottom edge (200 - 28 padding)')
  t.notMatch(chart, /NaN|undefined/)
  t.match(chart, /<\/svg>$/)
})

t.test('passwords: scrypt, salted, verified in constant time', async (t) => {
  const hash = await hashPassword('s3cret')
  t.match(hash, /^scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/)
  t.not(await hashPassword('s3cret'), hash, 'a new salt each time')
  t.equal(await verifyPassword('s3cret', hash), true)
  t.equal(await verifyPassword('s3cret ', hash), false)
  t.equal(await verifyPassword('', hash), false)
  t.equal(await verifyPassword('s3cret', 'plain-text'), false, 'an unknown scheme never verifies')
  const parts = hash.split('$')
  const tampered = Buffer.from(parts[5] ?? '', 'base64')
  tampered[0] = (tampered[0] ?? 0) ^ 1
  parts[5] = tampered.toString('base64')
  t.equal(await verifyPassword('s3cret', parts.join('$')), false, 'one flipped bit of the hash fails')
  t.equal(await verifyNobody('anything'), false)
})

t.test('session keys: hex or base64 of 32 bytes; generated once and kept', async (t) => {
  const key = randomBytes(32)
  t.same(parseSessionKey(key.toString('hex')), key)
  t.same(parseSessionKey(key.toString('base64')), key)
  t.same(parseSessionKey(` ${key.toString('hex')}\n`), key)
  t.throws(() => parseSessionKey('abc'), /32 bytes/)
  t.throws(() => parseSessionKey(randomBytes(16).toString('hex')), /32 bytes/)
  t.throws(() => parseSessionKey('not base64 at all!'), /32 bytes/)

  const dir = join(tempDir(t), 'data')
  const first = loadOrCreateSessionKey(dir)
  t.equal(first.created, true)
  t.equal(first.key.length, 32)
  t.equal(statSync(join(dir, SESSION_KEY_FILE)).mode & 0o777, 0o600, 'readable by the owner only')
  const second = loadOrCreateSessionKey(dir)
  t.equal(second.created, false)
  t.same(second.key, first.key, 'the same key on the next start')
  writeFileSync(join(dir, SESSION_KEY_FILE), 'broken')
  t.throws(() => loadOrCreateSessionKey(dir), /32 bytes/, 'a damaged key file is an error, not a silent new key')
  t.match(readFileSync(join(dir, SESSION_KEY_FILE), 'utf8'), 'broken', 'and is left alone')
})

t.test('validatePostForm', async (t) => {
  t.same(validatePostForm({ title: ' Hi ', body: 'a\r\nb', published: 'on' }),
    { ok: true, value: { title: 'Hi', body: 'a\nb', published: true } })
  t.equal(validatePostForm({ title: 'Hi', body: 'x' }).value.published, false, 'no checkbox: a draft')
  t.equal(validatePostForm(undefined).ok, false)
  t.equal(validatePostForm({ title: 'Hi', body: 'x'.repeat(MAX_BODY_BYTES) }).ok, true, 'exactly the limit is fine')
  const over = validatePostForm({ title: '', body: 'x'.repeat(MAX_BODY_BYTES + 1) })
  t.same(over.ok ? [] : over.errors, ['The title is required.', 'The body is larger than 100 KB.'], 'every problem at once')
})

t.test('configFromEnv: DESIGN.md defaults, and the environment when set', async (t) => {
  const defaults = configFromEnv({})
  t.equal(defaults.host, '127.0.0.1')
  t.equal(defaults.port, 3000)
  t.equal(defaults.trustProxy, false)
  t.match(defaults.blog, {
    dbPath: './data/blog.db',
    dataDir: './data',
    redisUrl: 'redis://127.0.0.1:6379',
    adminUser: 'admin',
    adminPassword: 'admin',
    sessionKey: undefined,
    secureCookie: 'auto',
    slowMs: 0,
    publicUrl: undefined
  })
  const set = configFromEnv({
    HOST: '0.0.0.0',
    PORT: '8080',
    REDIS_URL: 'redis://cache:6380/2',
    BLOG_DB: '/srv/blog.db',
    ADMIN_USER: 'fancy',
    ADMIN_PASSWORD: 'pw',
    SESSION_KEY: 'k',
    BLOG_SLOW_MS: '1000',
    TRUST_PROXY: 'true',
    SECURE_COOKIE: 'true',
    PUBLIC_URL: 'https://blog.example.org'
  })
  t.equal(set.host, '0.0.0.0')
  t.equal(set.port, 8080)
  t.equal(set.trustProxy, true)
  t.match(set.blog, {
    dbPath: '/srv/blog.db',
    dataDir: './data',
    redisUrl: 'redis://cache:6380/2',
    adminUser: 'fancy',
    adminPassword: 'pw',
    sessionKey: 'k',
    slowMs: 1000,
    secureCookie: true,
    publicUrl: 'https://blog.example.org'
  })
  t.throws(() => configFromEnv({ PORT: 'eighty' }), /PORT/)
  t.throws(() => configFromEnv({ BLOG_SLOW_MS: '-5' }), /BLOG_SLOW_MS/)
  t.throws(() => configFromEnv({ SECURE_COOKIE: 'maybe' }), /SECURE_COOKIE/)
})

t.test('small formatting helpers', async (t) => {
  t.equal(formatDuration(-1), 'no expiry')
  t.equal(formatDuration(65_000), '1m 05s')
  t.equal(formatDuration(2 * 3600_000), '2h 00m')
  t.equal(redactUrl('redis://user:hunter2@cache:6379/0'), 'redis://user:***@cache:6379/0')
  t.equal(redactUrl('redis://127.0.0.1:6379'), 'redis://127.0.0.1:6379')
})
