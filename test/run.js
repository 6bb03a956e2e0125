// `npm test`: checks that a Redis is at hand, runs tap, and ends with one line "N passed, N failed".
import { spawn, spawnSync } from 'node:child_process'
import { rmSync } from 'node:fs'
import { createConnection } from 'node:net'

const HOW_TO_GET_REDIS = 'fastify-cache tests need a real Redis: install redis-server (apt-get install redis-server) ' +
  'or set REDIS_URL=redis://host:port'

async function reachable (url) {
  const { hostname, port } = new URL(url)
  return await new Promise((resolve) => {
    const socket = createConnection({ host: hostname || '127.0.0.1', port: Number(port || 6379), timeout: 1_000 })
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
    socket.once('timeout', () => { socket.destroy(); resolve(false) })
  })
}

if (process.env.REDIS_URL) {
  if (!await reachable(process.env.REDIS_URL)) {
    console.error(`${HOW_TO_GET_REDIS} (nothing answers at REDIS_URL=${process.env.REDIS_URL})`)
    process.exit(1)
  }
} else if (spawnSync('redis-server', ['--version']).error) {
  console.error(HOW_TO_GET_REDIS)
  process.exit(1)
}

const resultsDir = '.tap/test-results'
rmSync(resultsDir, { recursive: true, force: true })

// tap's own summary counts every assertion: `# { total: N, pass: N, fail: N }`. It is read here, and restated as
// the last line, because CI reads only that line.
const tap = spawn(process.execPath, ['node_modules/tap/dist/esm/run.mjs', ...process.argv.slice(2)], {
  stdio: ['inherit', 'pipe', 'inherit']
})
let tail = ''
tap.stdout.on('data', (chunk) => {
  process.stdout.write(chunk)
  tail = (tail + chunk.toString()).slice(-8_192)
})
const exitCode = await new Promise((resolve) => tap.once('close', (code, signal) => resolve(code ?? (signal ? 1 : 0))))

const summaries = [...tail.matchAll(/# \{ total: (\d+)(?:, pass: (\d+))?(?:, fail: (\d+))?/g)]
const summary = summaries.at(-1)
const passed = Number(summary?.[2] ?? 0)
let failed = Number(summary?.[3] ?? 0)
if (summary === undefined) {
  console.log('tap printed no summary: the run itself failed')
  failed = 1
} else if (exitCode !== 0 && failed === 0) {
  console.log(`tap exited with ${exitCode} although every assertion passed (coverage below the threshold, a file that ` +
    'crashed, or a runner error)')
  failed = 1
}
console.log(`${passed} passed, ${failed} failed`)
process.exit(failed === 0 && exitCode === 0 ? 0 : 1)
