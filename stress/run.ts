// `npm run test:stress [-- --quick] [-- --only 1,5] [-- --seed N]`: faults under load and bad input. Starts its own
// redis-server processes, servers (each in its own process) and load generators (autocannon, in another process),
// prints each scenario against its goals, and writes stress/results.json. See stress/README.md.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { ROOT } from './lib/child.js'
import type { RunContext, Scenario, ScenarioResult } from './lib/scenario.js'
import { redisKilled } from './scenarios/redis-killed.js'
import { redisHung, redisSlow } from './scenarios/redis-sick.js'
import { redisFull } from './scenarios/redis-full.js'
import { fuzz } from './scenarios/fuzz.js'
import { keyProperty } from './scenarios/key-property.js'
import { corruptData } from './scenarios/corrupt.js'

const SCENARIOS: Array<[string, string, Scenario]> = [
  ['1', 'Redis killed under load (blog index)', redisKilled],
  ['2', 'Redis hung (CLIENT PAUSE 5000 ALL)', redisHung],
  ['3', 'Redis slow (200 ms per chunk proxy)', redisSlow],
  ['4', 'Redis full (maxmemory 2mb, noeviction)', redisFull],
  ['5', 'Fuzzed paths, queries and vary headers', fuzz],
  ['6', 'Key function properties (fast-check)', keyProperty],
  ['7', 'Corrupt or foreign data under load', corruptData]
]
/** The whole run must stay well under 10 minutes; a scenario that hangs is cut off. */
const SCENARIO_TIMEOUT_MS = 150_000

function argValue (name: string): string | undefined {
  const at = process.argv.indexOf(name)
  if (at !== -1) return process.argv[at + 1]
  return process.argv.find((arg) => arg.startsWith(`${name}=`))?.slice(name.length + 1)
}

const quick = process.argv.includes('--quick')
const only = argValue('--only')?.split(',').map((id) => id.trim())
const seed = Number(argValue('--seed') ?? Date.now() % 1_000_000)
const tmpDir = mkdtempSync(join(tmpdir(), 'fastify-cache-stress-'))
const startedAt = Date.now()
const ctx: RunContext = {
  quick,
  tmpDir,
  seed,
  log: (message) => process.stdout.write(`    ${message}\n`)
}

const redisVersion = spawnSync('redis-server', ['--version']).stdout?.toString().trim() ?? 'unknown'
console.log(`fastify-cache stress (${quick ? 'quick' : 'full'} run, seed ${seed}; ${cpus().length} CPUs, node ${process.version}; ${redisVersion})`)

const results: ScenarioResult[] = []
for (const [id, name, scenario] of SCENARIOS) {
  if (only !== undefined && !only.includes(id)) continue
  console.log(`\n[${id}] ${name}`)
  const began = Date.now()
  let timer: NodeJS.Timeout | undefined
  try {
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`did not finish within ${SCENARIO_TIMEOUT_MS / 1000} s`)), SCENARIO_TIMEOUT_MS)
    })
    const result = await Promise.race([scenario(ctx), timeout])
    results.push({ ...result, seconds: Math.round((Date.now() - began) / 100) / 10 })
  } catch (err) {
    results.push({
      id,
      name,
      method: '',
      goals: [{ goal: 'scenario runs to the end', measured: (err as Error).message.split('\n')[0] ?? '', pass: false }],
      figures: {},
      error: (err as Error).stack ?? String(err),
      seconds: Math.round((Date.now() - began) / 100) / 10
    })
  } finally {
    clearTimeout(timer)
  }
  const last = results.at(-1) as ScenarioResult
  for (const g of last.goals) console.log(`    ${g.pass ? 'PASS' : 'FAIL'}  ${g.goal}: ${g.measured}`)
}

// The table: one row per goal.
const rows = results.flatMap((result) => result.goals.map((g, i) => [
  i === 0 ? result.id : '', i === 0 ? result.name : '', g.goal, g.measured, g.pass ? 'PASS' : 'FAIL'
]))
const header = ['#', 'scenario', 'goal', 'measured', 'result']
const widths = header.map((title, column) => Math.min(column === 3 ? 90 : 60, Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length))))
const line = (cells: string[]): string => cells.map((cell, column) => {
  const width = widths[column] as number
  return cell.length > width ? cell.slice(0, width - 1) + '…' : cell.padEnd(width)
}).join(' | ')
console.log('\n' + line(header))
console.log(widths.map((width) => '-'.repeat(width)).join('-|-'))
for (const row of rows) console.log(line(row))

const goals = results.flatMap((result) => result.goals)
const failed = goals.filter((g) => !g.pass).length
const seconds = Math.round((Date.now() - startedAt) / 1000)
console.log(`\n${goals.length - failed} goals passed, ${failed} failed, in ${seconds} s (details: stress/results.json)`)

writeFileSync(join(ROOT, 'stress', 'results.json'), JSON.stringify({
  mode: quick ? 'quick' : 'full',
  seed,
  startedAt: new Date(startedAt).toISOString(),
  seconds,
  machine: { cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version, redis: redisVersion },
  passed: goals.length - failed,
  failed,
  scenarios: results
}, null, 2) + '\n')
rmSync(tmpDir, { recursive: true, force: true })
process.exit(failed === 0 ? 0 : 1)
