// 2. Redis hung (CLIENT PAUSE) and 3. Redis slow (a proxy holding every chunk): every request must be answered within
// the lookup budget plus the handler's own time.
import { setTimeout as sleep } from 'node:timers/promises'
import { startServer } from '../lib/child.js'
import { runLoad, sleepUntil, startLoad } from '../lib/load.js'
import { cacheMix, round, windowOf } from '../lib/metrics.js'
import { fetchStats, warm } from '../lib/poll.js'
import { DelayProxy } from '../lib/proxy.js'
import { fleetLocks } from '../../test/helpers/redis.js'
import { adminClient, ownRedis } from '../lib/redis.js'
import { Cleanup, goal, type Scenario } from '../lib/scenario.js'

const HANDLER_MS = 20
const LOOKUP_BUDGET_MS = 50 // the plugin's default lookupTimeoutMs, which the app keeps
const CONNECTIONS = 20
const FAULT_MS = 5_000
const PROXY_DELAY_MS = 200
/** Far longer than a request in flight holds a lock (budget + handler), far shorter than lockTimeoutMs. */
const SETTLE_MS = 1_000

async function sick (kind: 'hung' | 'slow', quick: boolean, tmpDir: string, log: (message: string) => void): Promise<Awaited<ReturnType<Scenario>>> {
  const plan = quick ? { baselineSec: 3, loadSec: 8, faultAtSec: 1.5 } : { baselineSec: 5, loadSec: 10, faultAtSec: 2 }
  const cleanup = new Cleanup()
  try {
    const redis = await ownRedis()
    cleanup.add(async () => await redis.stop())
    let redisUrl = redis.url
    let proxy: DelayProxy | undefined
    if (kind === 'slow') {
      proxy = new DelayProxy(redis.port)
      const proxyPort = await proxy.listen()
      cleanup.add(async () => await proxy?.close())
      redisUrl = `redis://127.0.0.1:${proxyPort}`
    }
    const admin = adminClient(redis)
    cleanup.add(() => admin.disconnect())
    const app = await startServer('stress/servers/app.ts', { redisUrl, prefix: `stress-${kind}:`, handlerMs: HANDLER_MS }, `app (${kind})`)
    cleanup.add(async () => await app.child.stop())
    const warmed = await warm(`${app.url}/slow/hot`)

    log(`uncached reference: ${CONNECTIONS} connections for ${plan.baselineSec} s on /slow/:id (handler ${HANDLER_MS} ms)`)
    const uncached = await runLoad({
      url: app.url, connections: CONNECTIONS, durationSec: plan.baselineSec, paths: ['/slow/u{n}'], headers: { authorization: 'Bearer uncached' }
    }, tmpDir)
    const reference = windowOf(uncached, uncached.startedAt + 500, uncached.endedAt)

    const fault = kind === 'hung' ? 'CLIENT PAUSE 5000 ALL' : `a ${PROXY_DELAY_MS} ms delay on every chunk`
    log(`load: ${CONNECTIONS} connections for ${plan.loadSec} s on a hot page and cold pages; ${fault} at ${plan.faultAtSec} s for ${FAULT_MS / 1000} s`)
    const load = await startLoad({ url: app.url, connections: CONNECTIONS, durationSec: plan.loadSec, paths: ['/slow/hot', '/slow/k{n}'] }, tmpDir)
    await sleepUntil(load.startedAt + plan.faultAtSec * 1000)
    const faultAt = Date.now()
    if (kind === 'hung') {
      await admin.client('PAUSE', FAULT_MS, 'ALL')
    } else {
      ;(proxy as DelayProxy).delayMs = PROXY_DELAY_MS
      await sleepUntil(faultAt + FAULT_MS)
      ;(proxy as DelayProxy).delayMs = 0
    }
    const samples = await load.done
    // autocannon has hung up, but the app may still be running the requests it had received: each holds its lock for
    // its handler and releases it when it answers. Past that, every fleet lock still in Redis is one nobody will
    // release (it would stay until lockTimeoutMs, 10 s).
    await sleep(SETTLE_MS)
    const orphans = await fleetLocks(admin, `stress-${kind}:`)
    const stats = await fetchStats(app.url)
    const during = windowOf(samples, faultAt, faultAt + FAULT_MS)
    const before = windowOf(samples, load.startedAt + 500, faultAt)
    const after = windowOf(samples, faultAt + FAULT_MS, samples.endedAt)
    const overhead = Math.max(0, reference.max - HANDLER_MS)
    const strict = LOOKUP_BUDGET_MS + HANDLER_MS
    const bound = strict + overhead
    const over = samples.latency.filter((latency, i) => {
      const start = (samples.t[i] as number) - latency
      return start >= faultAt && start < faultAt + FAULT_MS && latency > bound
    }).length
    const slowest = samples.latency.map((latency, i) => ({ latency, start: (samples.t[i] as number) - latency, code: samples.cache.charAt(i) }))
      .filter((sample) => sample.start >= faultAt && sample.start < faultAt + FAULT_MS)
      .sort((a, b) => b.latency - a.latency).slice(0, 8)
      .map((sample) => `${round(sample.latency)} ms ${sample.code} at +${Math.round(sample.start - faultAt)} ms`)
    const breakerLines = app.child.lines.filter((entry) => entry.at >= faultAt - 100 && /breaker|resumes/.test(String(entry.line.msg)))
      .map((entry) => `+${entry.at - faultAt} ms ${String(entry.line.msg)}`)
    const crashed = app.child.crashed()
    return {
      id: kind === 'hung' ? '2' : '3',
      name: kind === 'hung' ? 'Redis hung (CLIENT PAUSE 5000 ALL)' : `Redis slow (${PROXY_DELAY_MS} ms per chunk proxy)`,
      method: `plain app with the plugin's defaults (lookupTimeoutMs ${LOOKUP_BUDGET_MS}, breaker 5/1000 ms, singleFlight 'fleet') ` +
        `in its own process; autocannon, ${CONNECTIONS} connections on /slow/hot (cached) and /slow/k<n> (cold, a new page ` +
        `each time), handler ${HANDLER_MS} ms; ${kind === 'hung' ? 'CLIENT PAUSE 5000 ALL from an admin connection' : `a loopback TCP proxy between app and Redis holds every chunk ${PROXY_DELAY_MS} ms`} ` +
        `for ${FAULT_MS / 1000} s. Bound: budget + handler, plus the HTTP overhead measured in the same run (max latency ` +
        'of the same load with the cache bypassed, minus the handler time).',
      goals: [
        goal('every request answered 200', samples.non2xx === 0 && samples.errors.length === 0 && !crashed,
          `${samples.requests - samples.non2xx} of ${samples.requests}, ${samples.errors.length} socket errors`),
        goal('max latency during the fault <= budget + handler (+ measured overhead)', during.max <= bound,
          `max ${during.max} ms, p99 ${during.p99} ms vs ${LOOKUP_BUDGET_MS} + ${HANDLER_MS} = ${strict} ms (+${round(overhead)} = ${round(bound)} ms); ${over} of ${during.requests} over`),
        goal('no wrong body served', samples.garbage === 0, `${samples.garbage} wrong bodies`),
        goal('no fleet lock left behind once the load is over', orphans.length === 0,
          `${orphans.length} locks left (each blocks its page's cold requests until it expires, lockTimeoutMs 10 s)`)
      ],
      figures: {
        warmed,
        uncachedReference: reference,
        before,
        during,
        after,
        duringMix: cacheMix(during.cache),
        overBound: over,
        orphanLocks: orphans.length,
        slowest,
        breakerLines,
        bound,
        stats
      }
    }
  } finally {
    await cleanup.run()
  }
}

export const redisHung: Scenario = async ({ quick, tmpDir, log }) => await sick('hung', quick, tmpDir, log)
export const redisSlow: Scenario = async ({ quick, tmpDir, log }) => await sick('slow', quick, tmpDir, log)
