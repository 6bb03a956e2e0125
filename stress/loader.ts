// The load generator: autocannon in its own process, so that it never shares an event loop with a server under test.
// Configured by the JSON in STRESS_CONFIG. It records every response (completion time, latency, status, x-cache, and
// whether the body is what the request's own handler renders) and every socket error, writes them to
// `samplesFile`, and prints {"event":"started"} and {"event":"done"} on stdout.
import { writeFileSync } from 'node:fs'
import autocannon from 'autocannon'
import { EXPECT_HEADER, verify } from './lib/app-routes.js'

export interface LoadConfig {
  /** Base URL, e.g. http://127.0.0.1:1234 */
  url: string
  connections: number
  durationSec: number
  /** Paths, used in turn; `{n}` is replaced by a counter (modulo `distinct` when given). */
  paths: string[]
  distinct?: number
  headers?: Record<string, string>
  timeoutSec?: number
  samplesFile: string
}

export interface LoadSamples {
  startedAt: number
  endedAt: number
  /** Per response: completion time (epoch ms), latency (ms), status, x-cache initial (H, M, B, S, or - for none). */
  t: number[]
  latency: number[]
  status: number[]
  cache: string
  /** Responses whose body is not what their own request's handler renders (see lib/app-routes.ts). */
  garbage: number
  garbageExamples: string[]
  /** Socket errors and timeouts, with the time they were reported. */
  errors: Array<{ at: number, message: string }>
  requests: number
  non2xx: number
}

const config = JSON.parse(process.env.STRESS_CONFIG ?? '{}') as LoadConfig
const samples: LoadSamples = {
  startedAt: Date.now(), endedAt: 0, t: [], latency: [], status: [], cache: '', garbage: 0, garbageExamples: [], errors: [], requests: 0, non2xx: 0
}
const cacheCodes: string[] = []
let counter = 0
let pendingCode = '-'

function header (headers: Record<string, string | string[]>, name: string): string | string[] | undefined {
  return headers[name] ?? headers[Object.keys(headers).find((key) => key.toLowerCase() === name) ?? '']
}

function onResponse (status: number, body: string, _context: unknown, received: Record<string, string | string[] | undefined> | undefined): void {
  const headers = (received ?? {}) as Record<string, string | string[]>
  const label = header(headers, 'x-cache')
  pendingCode = typeof label === 'string' ? label.charAt(0) : '-'
  if (status === 200 && verify(header(headers, EXPECT_HEADER), body) === 'garbage') {
    samples.garbage++
    if (samples.garbageExamples.length < 5) samples.garbageExamples.push(`${String(label)} ${JSON.stringify(body.slice(0, 120))}`)
  }
}

const requests = config.paths.map((template) => {
  if (!template.includes('{n}')) return { method: 'GET' as const, path: template, onResponse }
  return {
    method: 'GET' as const,
    path: template.replace('{n}', '0'),
    onResponse,
    setupRequest: (request: autocannon.Request) => {
      const n = config.distinct === undefined ? counter++ : counter++ % config.distinct
      return { ...request, path: template.replace('{n}', String(n)) }
    }
  }
})

const instance = autocannon({
  url: config.url,
  connections: config.connections,
  duration: config.durationSec,
  timeout: config.timeoutSec ?? 10,
  headers: config.headers,
  requests
}, (err, result) => {
  samples.endedAt = Date.now()
  if (err !== null && err !== undefined) samples.errors.push({ at: Date.now(), message: `autocannon: ${String(err)}` })
  samples.cache = cacheCodes.join('')
  samples.requests = samples.t.length
  samples.non2xx = result?.non2xx ?? samples.status.filter((status) => status < 200 || status > 299).length
  writeFileSync(config.samplesFile, JSON.stringify(samples))
  process.stdout.write(JSON.stringify({ event: 'done', requests: samples.requests }) + '\n')
})
instance.on('response', (_client, statusCode, _bytes, responseTime) => {
  samples.t.push(Date.now())
  samples.latency.push(responseTime)
  samples.status.push(statusCode)
  cacheCodes.push(pendingCode)
  pendingCode = '-'
})
instance.on('reqError', (err) => {
  samples.errors.push({ at: Date.now(), message: err.message })
})
process.stdout.write(JSON.stringify({ event: 'started', at: samples.startedAt }) + '\n')
