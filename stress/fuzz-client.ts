// The fuzzer: sends random requests (lib/fuzz.ts) to a server, each on its own connection, from its own process.
// Configured by the JSON in STRESS_CONFIG; writes its findings to `outFile` and prints {"event":"done"}.
import { writeFileSync } from 'node:fs'
import { verify, EXPECT_HEADER } from './lib/app-routes.js'
import { fuzzRequests, type FuzzRequest } from './lib/fuzz.js'
import { rawRequest } from './lib/raw-http.js'

export interface FuzzConfig {
  port: number
  count: number
  concurrency: number
  seed: number
  outFile: string
}

export interface FuzzReport {
  sent: number
  answered: number
  byStatus: Record<string, number>
  cache: Record<string, number>
  serverErrors: number
  serverErrorExamples: string[]
  garbage: number
  garbageExamples: string[]
  socketErrors: number
  socketErrorExamples: string[]
  longestTarget: number
  ms: number
}

const config = JSON.parse(process.env.STRESS_CONFIG ?? '{}') as FuzzConfig
const requests = fuzzRequests(config.count, config.seed)
const report: FuzzReport = {
  sent: 0,
  answered: 0,
  byStatus: {},
  cache: {},
  serverErrors: 0,
  serverErrorExamples: [],
  garbage: 0,
  garbageExamples: [],
  socketErrors: 0,
  socketErrorExamples: [],
  longestTarget: 0,
  ms: 0
}
const describe = (request: FuzzRequest): string => `${request.method} ${request.target.slice(0, 100)}` +
  `${request.target.length > 100 ? `… (${request.target.length} chars)` : ''} ${JSON.stringify(request.headers).slice(0, 100)}`

const started = Date.now()
let next = 0
async function worker (): Promise<void> {
  while (next < requests.length) {
    const request = requests[next++] as FuzzRequest
    report.sent++
    report.longestTarget = Math.max(report.longestTarget, request.target.length)
    try {
      const response = await rawRequest(config.port, request)
      report.answered++
      report.byStatus[response.status] = (report.byStatus[response.status] ?? 0) + 1
      const label = String(response.headers['x-cache'] ?? 'none')
      report.cache[label] = (report.cache[label] ?? 0) + 1
      if (response.status >= 500) {
        report.serverErrors++
        if (report.serverErrorExamples.length < 5) {
          report.serverErrorExamples.push(`${response.status} ${describe(request)} -> ${response.body.toString().slice(0, 160)}`)
        }
      }
      if (request.method === 'GET' && response.status === 200 &&
        verify(response.headers[EXPECT_HEADER], response.body.toString('utf8')) === 'garbage') {
        report.garbage++
        if (report.garbageExamples.length < 5) report.garbageExamples.push(`${label} ${describe(request)}`)
      }
    } catch (err) {
      report.socketErrors++
      if (report.socketErrorExamples.length < 5) report.socketErrorExamples.push(`${(err as Error).message}: ${describe(request)}`)
    }
  }
}
await Promise.all(Array.from({ length: config.concurrency }, worker))
report.ms = Date.now() - started
writeFileSync(config.outFile, JSON.stringify(report))
process.stdout.write(JSON.stringify({ event: 'done', sent: report.sent }) + '\n')
