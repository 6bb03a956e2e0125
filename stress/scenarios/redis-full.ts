// 4. Redis full: maxmemory 2mb with noeviction, filled before the load, so every write fails while reads work.
import { startServer } from '../lib/child.js'
import { runLoad } from '../lib/load.js'
import { cacheMix, windowOf } from '../lib/metrics.js'
import { fetchStats, warm } from '../lib/poll.js'
import { census, ownRedisWithAdmin, usedMemory } from '../lib/redis.js'
import { Cleanup, goal, type Scenario } from '../lib/scenario.js'

const CONNECTIONS = 20
const ERROR_LOG_INTERVAL_MS = 10_000 // the plugin's default, which the app keeps
const MAX_LINES_PER_INTERVAL = 5

export const redisFull: Scenario = async ({ quick, tmpDir, log }) => {
  const loadSec = quick ? 6 : 12
  const cleanup = new Cleanup()
  try {
    const { redis, admin } = await ownRedisWithAdmin(cleanup, ['--maxmemory', '2mb', '--maxmemory-policy', 'noeviction'])
    let fillers = 0
    let refusal = ''
    while (refusal === '' && fillers < 10_000) {
      try {
        await admin.set(`stress-filler:${fillers}`, Buffer.alloc(16 * 1024, 1))
        fillers++
      } catch (err) {
        refusal = (err as Error).message
      }
    }
    // Well under what it holds: freed client buffers cannot bring it back under the limit for a few small writes.
    await admin.config('SET', 'maxmemory', '1mb')
    const memoryFull = await usedMemory(admin)
    const prefix = 'stress-full:'
    const app = await startServer('stress/servers/app.ts', { redisUrl: redis.url, prefix, handlerMs: 0 }, 'app (full)')
    cleanup.add(async () => await app.child.stop())
    const linesBefore = app.child.lines.length
    const warmed = await warm(`${app.url}/item/hot`, 3)

    log(`Redis filled with ${fillers} x 16 KB (${refusal.slice(0, 40)}); load: ${CONNECTIONS} connections for ${loadSec} s on new pages`)
    const samples = await runLoad({ url: app.url, connections: CONNECTIONS, durationSec: loadSec, paths: ['/item/f{n}', '/item/hot'] }, tmpDir)
    await new Promise((resolve) => setTimeout(resolve, 300)) // the last writes fail and log
    const stats = await fetchStats(app.url)
    const keys = await census(admin, prefix, 250)
    const all = windowOf(samples, samples.startedAt, samples.endedAt)

    const lines = app.child.lines.slice(linesBefore).filter((entry) => String(entry.line.msg ?? '').startsWith('fastify-cache'))
    const byKind: Record<string, number> = {}
    for (const entry of lines) {
      const kind = String(entry.line.cacheFailure ?? entry.line.msg).slice(0, 60)
      byKind[kind] = (byKind[kind] ?? 0) + 1
    }
    // The busiest errorLogIntervalMs window, sliding over the lines.
    let busiest = 0
    for (const entry of lines) {
      busiest = Math.max(busiest, lines.filter((other) => other.at >= entry.at && other.at < entry.at + ERROR_LOG_INTERVAL_MS).length)
    }
    const failureKinds = new Set(lines.map((entry) => entry.line.cacheFailure).filter((kind) => kind !== undefined))
    const failureLines = lines.filter((entry) => entry.line.cacheFailure !== undefined).length
    const failureBound = failureKinds.size * (Math.ceil(loadSec * 1000 / ERROR_LOG_INTERVAL_MS) + 1)
    const crashed = app.child.crashed()
    // Pages and tag indexes are hashes; fleet locks are fields of the page hashes, and released when a write fails.
    const pageKeys = keys.byType.hash ?? 0
    return {
      id: '4',
      name: 'Redis full (maxmemory 2mb, noeviction)',
      method: 'redis-server --maxmemory 2mb --maxmemory-policy noeviction, filled with 16 KB strings (outside the prefix) ' +
        `until it refused a write; plain app with the plugin's defaults (errorLogIntervalMs ${ERROR_LOG_INTERVAL_MS}) in its own ` +
        `process; autocannon ${CONNECTIONS} connections for ${loadSec} s on a new page per request plus one hot page. Log lines: ` +
        'the app\'s JSON log lines whose msg starts with "fastify-cache", counted in the busiest sliding window.',
      goals: [
        goal('pages still served: all 200', samples.non2xx === 0 && samples.errors.length === 0 && !crashed && samples.garbage === 0,
          `${samples.requests - samples.non2xx} of ${samples.requests} (${samples.errors.length} socket errors, ${samples.garbage} wrong bodies)`),
        goal('writes fail and are counted in stats().errors', stats.errors > 0 && pageKeys === 0,
          `errors ${stats.errors}, writes attempted ${stats.writes}, pages stored ${pageKeys}`),
        goal(`logged without flooding: <= ${MAX_LINES_PER_INTERVAL} lines per ${ERROR_LOG_INTERVAL_MS / 1000} s`,
          busiest <= MAX_LINES_PER_INTERVAL && failureLines <= failureBound && failureLines > 0,
          `busiest ${ERROR_LOG_INTERVAL_MS / 1000} s window ${busiest} lines; ${lines.length} in ${loadSec} s (${failureLines} failure lines, bound ${failureBound}) for ${stats.errors} errors`)
      ],
      figures: {
        fillers,
        refusal,
        usedMemory: memoryFull,
        warmed,
        load: all,
        mix: cacheMix(all.cache),
        stats,
        keys,
        logLinesByKind: byKind,
        logExamples: lines.slice(0, 6).map((entry) => `${entry.at - samples.startedAt} ms ${String(entry.line.cacheFailure ?? '')} ${String(entry.line.msg)} (suppressed ${String(entry.line.suppressed ?? '-')})`)
      }
    }
  } finally {
    await cleanup.run()
  }
}
