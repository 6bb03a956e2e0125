// 5. Fuzz: random paths, queries and vary headers on cached routes, from a separate process, over raw sockets.
import { join } from 'node:path'
import { readFileSync } from 'node:fs'
import { MAX_KEY_BYTES } from '../../plugin/index.js'
import type { FuzzReport } from '../fuzz-client.js'
import { startChild, startServer } from '../lib/child.js'
import { fetchStats } from '../lib/poll.js'
import { census, ownRedisWithAdmin, usedMemory } from '../lib/redis.js'
import { Cleanup, goal, type Scenario } from '../lib/scenario.js'

export const FUZZ_MAX_VARIANTS = 50
const CONCURRENCY = 16
/** Each stored response is a small header, a body of at most a few hundred bytes, a 43-byte field and a key <= 250 bytes. */
const MAX_BYTES_PER_WRITE = 2_048

export const fuzz: Scenario = async ({ quick, tmpDir, seed, log }) => {
  const count = quick ? 2_000 : 10_000
  const cleanup = new Cleanup()
  try {
    const { redis, admin } = await ownRedisWithAdmin(cleanup)
    const prefix = 'stress-fuzz:'
    const app = await startServer('stress/servers/app.ts', {
      redisUrl: redis.url, prefix, handlerMs: 0, cache: { maxVariants: FUZZ_MAX_VARIANTS }
    }, 'app (fuzz)')
    cleanup.add(async () => await app.child.stop())
    const memoryBefore = await usedMemory(admin)

    // The plain page of the most flooded route, stored first: no flood of variants may push it out of Redis.
    const plainHit = async (): Promise<boolean> => {
      const response = await fetch(`${app.url}/q`)
      await response.arrayBuffer()
      return response.headers.get('x-cache') === 'HIT'
    }
    for (let attempt = 0; attempt < 100 && !await plainHit(); attempt++) await new Promise((resolve) => setTimeout(resolve, 20))
    const plain = { checks: 0, notHit: 0, watching: true }
    const watcher = (async () => {
      while (plain.watching) {
        plain.checks++
        if (!await plainHit()) plain.notHit++
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    })()

    log(`${count} random requests, ${CONCURRENCY} at a time, seed ${seed}`)
    const outFile = join(tmpDir, 'fuzz.json')
    const client = startChild('stress/fuzz-client.ts', { port: app.port, count, concurrency: CONCURRENCY, seed, outFile }, 'fuzzer')
    cleanup.add(async () => await client.stop())
    await client.waitFor((line) => line.event === 'done', 130_000)
    const report = JSON.parse(readFileSync(outFile, 'utf8')) as FuzzReport
    // Then one key pushed well past maxVariants on purpose, so that the cap is exercised whatever the fuzzer drew.
    for (let i = 0; i < FUZZ_MAX_VARIANTS * 3; i++) await fetch(`${app.url}/q?cap=${i}`).then(async (response) => await response.arrayBuffer())
    await new Promise((resolve) => setTimeout(resolve, 300)) // writes are not awaited by the requests
    plain.watching = false
    await watcher
    const capped = (await admin.hkeys(`${prefix}view//q`)).filter((name) => !name.startsWith(' ')).length
    const stats = await fetchStats(app.url)
    const memoryAfter = await usedMemory(admin)
    const keys = await census(admin, prefix, MAX_KEY_BYTES)
    const alive = await fetch(`${app.url}/item/alive`).then((response) => response.status, () => 0)
    const crashed = app.child.crashed()
    const growth = memoryAfter - memoryBefore
    const perWrite = stats.writes === 0 ? 0 : Math.round(growth / stats.writes)
    const plugin5xx = app.child.lines.filter((entry) => Number(entry.line.level) >= 50)

    return {
      id: '5',
      name: 'Fuzzed paths, queries and vary headers',
      method: `plain app (maxVariants ${FUZZ_MAX_VARIANTS}) in its own process with /q (queryString: true), /page ` +
        "(queryString: ['page']), /lang (vary: ['accept-language']) and /item/:id; a fuzzer process sends fast-check requests " +
        `(seed ${seed}) over raw sockets: paths up to ~11 KB, valid/invalid/over-long percent-encoding, %00, unicode, dot ` +
        'segments, repeated/array/huge query parameters, random accept-language values and lines, HEAD, forged ' +
        'forwarding headers. Every 200 is checked against what its own request\'s handler renders (x-stress-expect). ' +
        `Then ${FUZZ_MAX_VARIANTS * 3} distinct queries on /q. Keys: SCAN of the prefix as raw bytes; HLEN of every hash.`,
      goals: [
        goal(`>= ${count} requests, no 5xx`, report.answered >= count && report.serverErrors === 0 && !crashed && alive === 200,
          `${report.answered} answered (${Object.entries(report.byStatus).map(([status, n]) => `${status}: ${n}`).join(', ')}), ${report.serverErrors} 5xx, ${report.socketErrors} socket errors${crashed ? ', app crashed' : ''}`),
        goal('no response served for another request (body matches its own handler)', report.garbage === 0,
          `${report.garbage} wrong bodies${report.garbage > 0 ? `: ${report.garbageExamples[0] ?? ''}` : ''}`),
        goal(`every Redis key <= ${MAX_KEY_BYTES} bytes`, keys.maxKeyBytes <= MAX_KEY_BYTES && keys.over.length === 0,
          `${keys.keys} keys, longest ${keys.maxKeyBytes} bytes`),
        goal(`fields per key capped by maxVariants (${FUZZ_MAX_VARIANTS})`, keys.maxFields <= FUZZ_MAX_VARIANTS + 1,
          `most fields in one key: ${keys.maxFields} (variants plus the version field); /q after ${FUZZ_MAX_VARIANTS * 3} more distinct queries: ${capped}`),
        goal('the plain page of the flooded route stays a HIT throughout', plain.checks > 0 && plain.notHit === 0,
          `${plain.checks} checks of /q during the fuzz and the ${FUZZ_MAX_VARIANTS * 3} extra variants, ${plain.notHit} not a HIT`),
        goal(`used_memory bounded (<= ${MAX_BYTES_PER_WRITE} B per stored response)`, perWrite <= MAX_BYTES_PER_WRITE,
          `${(memoryBefore / 1e6).toFixed(2)} MB -> ${(memoryAfter / 1e6).toFixed(2)} MB (+${Math.round(growth / 1024)} KB for ${stats.writes} writes, ${perWrite} B each)`)
      ],
      figures: { report, stats, keys, memoryBefore, memoryAfter, errorLogLines: plugin5xx.slice(0, 5).map((entry) => entry.line) }
    }
  } finally {
    await cleanup.run()
  }
}
