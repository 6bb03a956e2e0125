// 7. Corrupt or foreign data under the prefix, written while the app is under load, then probed kind by kind.
import { decodePage } from '../../plugin/index.js'
import { itemBody } from '../lib/app-routes.js'
import { startServer } from '../lib/child.js'
import { CORRUPTION_NOTES, CORRUPTIONS, corrupt, type Corruption } from '../lib/corrupt.js'
import { sleepUntil, startLoad } from '../lib/load.js'
import { cacheMix, windowOf } from '../lib/metrics.js'
import { fetchStats, warm } from '../lib/poll.js'
import { ownRedisWithAdmin } from '../lib/redis.js'
import { Cleanup, goal, type Scenario } from '../lib/scenario.js'

const CONNECTIONS = 20
const IDS_PER_KIND = 2

export interface ProbeOutcome {
  kind: Corruption
  note: string
  /** The first request after the corruption: status, x-cache, and whether the body is the page's. */
  first: string
  second: string
  miss: boolean
  counted: boolean
  overwritten: boolean
}

export const corruptData: Scenario = async ({ quick, tmpDir, log }) => {
  const loadSec = quick ? 6 : 10
  const cleanup = new Cleanup()
  try {
    const { redis, admin } = await ownRedisWithAdmin(cleanup)
    const prefix = 'stress-corrupt:'
    const app = await startServer('stress/servers/app.ts', { redisUrl: redis.url, prefix, handlerMs: 0 }, 'app (corrupt)')
    cleanup.add(async () => await app.child.stop())
    const storeKey = (id: string): string => `${prefix}view//item/${id}`

    const ids = CORRUPTIONS.flatMap((kind) => Array.from({ length: IDS_PER_KIND }, (_unused, i) => ({ kind, id: `load-${kind}-${i}` })))
    for (const { id } of ids) await warm(`${app.url}/item/${id}`, 5)
    log(`load: ${CONNECTIONS} connections for ${loadSec} s on ${ids.length} pages while ${CORRUPTIONS.length} kinds of corruption are written every 10 ms`)
    const load = await startLoad({ url: app.url, connections: CONNECTIONS, durationSec: loadSec, paths: ids.map(({ id }) => `/item/${id}`) }, tmpDir)
    const stopAt = load.startedAt + loadSec * 1000 - 500
    let written = 0
    while (Date.now() < stopAt) {
      const { kind, id } = ids[Math.floor(Math.random() * ids.length)] as { kind: Corruption, id: string }
      await corrupt(admin, storeKey(id), kind, itemBody(id))
      written++
      await sleepUntil(Date.now() + 10)
    }
    const samples = await load.done
    const all = windowOf(samples, samples.startedAt, samples.endedAt)
    const fiveXX = samples.status.filter((status) => status >= 500).length

    // Kind by kind, on a quiet app: what does the first request after the corruption get, is it counted, and does
    // the next store replace it?
    const outcomes: ProbeOutcome[] = []
    for (const kind of CORRUPTIONS) {
      const id = `probe-${kind}`
      const expected = itemBody(id)
      await warm(`${app.url}/item/${id}`, 20)
      const before = (await fetchStats(app.url)).errors
      const corruptedAt = Date.now()
      await corrupt(admin, storeKey(id), kind, expected)
      const ask = async (): Promise<{ text: string, ok: boolean, miss: boolean }> => {
        const response = await fetch(`${app.url}/item/${id}`)
        const body = await response.text()
        const label = response.headers.get('x-cache') ?? 'none'
        const ok = response.status === 200 && body === expected
        return { text: `${response.status} ${label}${response.status === 200 ? (ok ? ' right body' : ` WRONG BODY (${body.length} of ${expected.length} bytes)`) : ''}`, ok, miss: ok && label === 'MISS' }
      }
      const first = await ask()
      await new Promise((resolve) => setTimeout(resolve, 150)) // the write is not awaited by the request
      const second = await ask()
      const after = (await fetchStats(app.url)).errors
      let overwritten = false
      try {
        const stored = await admin.hgetBuffer(storeKey(id), '')
        const entry = stored === null ? undefined : decodePage(stored)
        // Written by the plugin after the corruption, with the page's real status and body.
        overwritten = entry !== undefined && entry.createdAt >= corruptedAt && entry.status === 200 && entry.body.toString() === expected
      } catch {
        overwritten = false
      }
      outcomes.push({ kind, note: CORRUPTION_NOTES[kind], first: first.text, second: second.text, miss: first.miss, counted: after > before, overwritten })
    }
    const stats = await fetchStats(app.url)
    const alive = await fetch(`${app.url}/item/alive`).then((response) => response.status, () => 0)
    const crashed = app.child.crashed()
    const decodeLines = app.child.lines.filter((entry) => entry.line.cacheFailure === 'decode')
    const list = (kinds: ProbeOutcome[]): string => kinds.length === 0 ? 'none' : kinds.map((outcome) => outcome.kind).join(', ')
    const notMiss = outcomes.filter((outcome) => !outcome.miss)
    const notCounted = outcomes.filter((outcome) => !outcome.counted)
    const notOverwritten = outcomes.filter((outcome) => !outcome.overwritten)

    return {
      id: '7',
      name: 'Corrupt or foreign data under load',
      method: `plain app with the plugin's defaults in its own process; autocannon ${CONNECTIONS} connections for ${loadSec} s ` +
        `on ${ids.length} cached pages while the runner overwrites them in Redis with ${CORRUPTIONS.length} kinds of corruption ` +
        '(one every ~10 ms); every 200 is checked against its own handler\'s body. Then each kind is probed alone: corrupt, ' +
        'GET, GET again, read the key back.',
      goals: [
        goal('never a crash', !crashed && alive === 200, crashed ? 'the app exited' : 'the app answered throughout'),
        goal('no 5xx under load', fiveXX === 0 && samples.errors.length === 0,
          `${fiveXX} 5xx of ${samples.requests} (${samples.errors.length} socket errors)`),
        goal('never garbage served under load', samples.garbage === 0,
          `${samples.garbage} wrong bodies${samples.garbage > 0 ? ` e.g. ${samples.garbageExamples[0] ?? ''}` : ''}`),
        goal('each kind read as a miss (right body)', notMiss.length === 0,
          notMiss.length === 0 ? `all ${outcomes.length} kinds` : notMiss.map((outcome) => `${outcome.kind}: ${outcome.first}`).join('; ')),
        goal('each kind counted (stats().errors) and logged', notCounted.length === 0 && decodeLines.length > 0,
          `not counted: ${list(notCounted)}; ${decodeLines.length} "decode" log lines (rate-limited)`),
        goal('each kind overwritten by the next store', notOverwritten.length === 0, `not overwritten: ${list(notOverwritten)}`)
      ],
      figures: { corruptionsWritten: written, load: all, mix: cacheMix(all.cache), fiveXX, garbageExamples: samples.garbageExamples, outcomes, stats }
    }
  } finally {
    await cleanup.run()
  }
}
