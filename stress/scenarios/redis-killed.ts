// 1. Redis killed under load on the demo blog's index, restarted some seconds later.
import { startServer } from '../lib/child.js'
import { startLoad, runLoad, sleepUntil } from '../lib/load.js'
import { cacheMix, round, windowOf } from '../lib/metrics.js'
import { pollStats, pollXCache, warm, type StatsSample } from '../lib/poll.js'
import { ownRedis } from '../lib/redis.js'
import { Cleanup, goal, type Scenario } from '../lib/scenario.js'

const CONNECTIONS = 200
const RESUME_GOAL_MS = 2_000

export const redisKilled: Scenario = async ({ quick, tmpDir, log }) => {
  const plan = quick
    ? { baselineSec: 4, loadSec: 10, killAtSec: 2.5, outageSec: 3 }
    : { baselineSec: 10, loadSec: 20, killAtSec: 5, outageSec: 5 }
  const cleanup = new Cleanup()
  try {
    const redis = await ownRedis()
    cleanup.add(async () => await redis.stop())
    const blog = await startServer('stress/servers/blog.ts', { redisUrl: redis.url, prefix: 'stress-blog:', slowMs: 0 }, 'blog')
    cleanup.add(async () => await blog.child.stop())
    const warmed = await warm(`${blog.url}/`)

    // The uncached reference: the same index, same connections, with an Authorization header, which the plugin
    // bypasses before any store access (no lookup, no L1, no single flight), so every request renders the page.
    log(`uncached reference: ${CONNECTIONS} connections for ${plan.baselineSec} s`)
    const uncached = await runLoad({
      url: blog.url, connections: CONNECTIONS, durationSec: plan.baselineSec, paths: ['/'], headers: { authorization: 'Bearer stress-uncached' }
    }, tmpDir)
    const uncachedAll = windowOf(uncached, uncached.startedAt + 1_000, uncached.endedAt)

    log(`load: ${CONNECTIONS} connections for ${plan.loadSec} s; Redis killed at ${plan.killAtSec} s, back ${plan.outageSec} s later`)
    const load = await startLoad({ url: blog.url, connections: CONNECTIONS, durationSec: plan.loadSec, paths: ['/'] }, tmpDir)
    // A separate client on a variant the load never asks for, so its x-cache is never a hit shared with the load.
    const poller = pollXCache(`${blog.url}/?page=1`, 50)
    const stats = pollStats(blog.url, 250)
    await sleepUntil(load.startedAt + plan.killAtSec * 1000)
    const killedAt = Date.now()
    await redis.kill()
    await sleepUntil(killedAt + plan.outageSec * 1000)
    const restartAt = Date.now()
    await redis.restart()
    const backAt = Date.now() // redis-server printed "Ready to accept connections"
    const samples = await load.done
    await poller.stop()
    await stats.stop()

    const before = windowOf(samples, load.startedAt + 1_000, killedAt)
    const outage = windowOf(samples, killedAt, backAt)
    const after = windowOf(samples, backAt, samples.endedAt)
    const firstHit = poller.samples.find((poll) => poll.at >= backAt && poll.cache === 'HIT')
    const resumeMs = firstHit === undefined ? Number.POSITIVE_INFINITY : firstHit.at - backAt
    const statsSamples = stats.samples.filter((sample): sample is StatsSample => sample !== undefined)
    let storeHitMs = Number.POSITIVE_INFINITY
    let closedMs = Number.POSITIVE_INFINITY
    for (let i = 1; i < statsSamples.length; i++) {
      const sample = statsSamples[i] as StatsSample
      const previous = statsSamples[i - 1] as StatsSample
      if (sample.at < backAt) continue
      if (storeHitMs === Number.POSITIVE_INFINITY && sample.hits - sample.coalesced > previous.hits - previous.coalesced) storeHitMs = sample.at - backAt
      if (closedMs === Number.POSITIVE_INFINITY && sample.breaker === 'closed') closedMs = sample.at - backAt
    }
    const pollsDuringOutage = poller.samples.filter((poll) => poll.sentAt >= killedAt && poll.at < backAt)
    const socketErrors = samples.errors.length
    const bound = 2 * uncachedAll.p99
    const crashed = blog.child.crashed()
    const pluginLines = blog.child.lines.filter((entry) => String(entry.line.msg ?? '').startsWith('fastify-cache'))

    return {
      id: '1',
      name: 'Redis killed under load (blog index)',
      method: 'demo blog in its own process (slowMs 0, default cache options: lookupTimeoutMs 50, breaker 5/1000 ms, l1 and bus on), ' +
        `autocannon in another process, ${CONNECTIONS} connections on GET / for ${plan.loadSec} s; redis-server SIGKILLed ` +
        `at ${plan.killAtSec} s and restarted ${plan.outageSec} s later on the same port. Uncached p99: the same load ` +
        'with an Authorization header (the plugin bypasses it before any store access), measured just before. Outage ' +
        'window: requests that started between the kill and "Ready to accept connections". Hits resumed: the first ' +
        'x-cache HIT on GET /?page=1 (a variant the load never touches) polled every 50 ms from the runner.',
      goals: [
        goal('0 non-2xx answers', samples.non2xx === 0 && !crashed, `${samples.non2xx} of ${samples.requests}${crashed ? ' (blog crashed)' : ''}`),
        goal('0 socket errors', socketErrors === 0, `${socketErrors}${socketErrors > 0 ? ` (${samples.errors[0]?.message ?? ''})` : ''}`),
        goal('p99 during outage <= 2x uncached p99', outage.p99 <= bound,
          `${outage.p99} ms vs 2 x ${uncachedAll.p99} = ${round(bound)} ms (max ${outage.max} ms)`),
        goal(`hits resume <= ${RESUME_GOAL_MS} ms after Redis is back`, resumeMs <= RESUME_GOAL_MS,
          `${Number.isFinite(resumeMs) ? `${resumeMs} ms` : 'never'} (store/L1 hits in stats: ${Number.isFinite(storeHitMs) ? `${storeHitMs} ms` : 'never'}; breaker closed: ${Number.isFinite(closedMs) ? `${closedMs} ms` : 'never'})`)
      ],
      figures: {
        warmed,
        uncached: uncachedAll,
        uncachedMix: cacheMix(uncachedAll.cache),
        before,
        outage,
        after,
        outageMix: cacheMix(outage.cache),
        timeline: { loadStartedAt: load.startedAt, killedAt, restartAt, backAt, loadEndedAt: samples.endedAt },
        requests: samples.requests,
        non2xx: samples.non2xx,
        socketErrors: samples.errors.slice(0, 5),
        resumeMs: Number.isFinite(resumeMs) ? resumeMs : null,
        storeHitMs: Number.isFinite(storeHitMs) ? storeHitMs : null,
        breakerClosedMs: Number.isFinite(closedMs) ? closedMs : null,
        pollsDuringOutage: { count: pollsDuringOutage.length, labels: [...new Set(pollsDuringOutage.map((poll) => poll.cache))] },
        pollsAfter: poller.samples.filter((poll) => poll.at >= backAt).slice(0, 12).map((poll) => `${poll.at - backAt}:${poll.cache}`),
        pluginLogLines: pluginLines.length,
        pluginLogExamples: pluginLines.slice(0, 6).map((entry) => `${entry.at - killedAt} ms: ${String(entry.line.msg)}`),
        finalStats: statsSamples.at(-1)
      }
    }
  } finally {
    await cleanup.run()
  }
}
