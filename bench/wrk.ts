// wrk, the bench's second load generator. autocannon runs in Node and shares its event loop with its own bookkeeping;
// wrk is C. The two disagree on a 2-core machine, so a target counts as met only when it holds under both.
import { spawn, spawnSync } from 'node:child_process'
import { rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface WrkResult {
  reqPerSec: number
  requests: number
  p50Ms: number
  p99Ms: number
  /** Socket errors (connect, read, write, timeout) and responses outside 2xx/3xx. */
  failed: number
}

export interface WrkLoad {
  url: string
  path: string
  headers?: Record<string, string>
  /** A new query string per request, `?k=<prefix><n>`: a cold key each time. */
  uniquePrefix?: string
  connections: number
  durationS: number
}

/** Whether a `wrk` binary is on the PATH (Debian's package). */
export function wrkAvailable (): boolean {
  return spawnSync('wrk', ['--version'], { stdio: 'ignore' }).error === undefined
}

let scripts = 0

/** One wrk run with one thread (the server and Redis need the other core), parsed from its report. */
export async function wrkLoad (spec: WrkLoad): Promise<WrkResult> {
  const args = ['-t1', `-c${spec.connections}`, `-d${spec.durationS}s`, '--latency']
  for (const [name, value] of Object.entries(spec.headers ?? {})) args.push('-H', `${name}: ${value}`)
  let script: string | undefined
  if (spec.uniquePrefix !== undefined) {
    script = join(tmpdir(), `fastify-cache-wrk-${process.pid}-${scripts++}.lua`)
    // One thread, so one Lua state: a plain counter is unique.
    writeFileSync(script, `local n = 0\nrequest = function()\n  n = n + 1\n  return wrk.format(nil, ${luaString(spec.path + '?k=' + spec.uniquePrefix)} .. n)\nend\n`)
    args.push('-s', script)
  }
  args.push(spec.url + spec.path)
  try {
    return parseWrk(await run('wrk', args))
  } finally {
    if (script !== undefined) rmSync(script, { force: true })
  }
}

function luaString (text: string): string {
  return '"' + text.replace(/[\\"]/g, (c) => '\\' + c) + '"'
}

async function run (command: string, args: string[]): Promise<string> {
  return await new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
    child.stderr.on('data', (chunk: Buffer) => { out += chunk.toString() })
    child.on('error', reject)
    child.on('close', (code) => {
      if (code === 0) resolve(out)
      else reject(new Error(`${command} exited with ${String(code)}: ${out.trim()}`))
    })
  })
}

export function parseWrk (report: string): WrkResult {
  const number = (pattern: RegExp): number => {
    const match = pattern.exec(report)
    if (match === null) throw new Error(`wrk's report has no ${String(pattern)}:\n${report}`)
    return Number(match[1])
  }
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(report)
  const socketErrors = socket === null ? 0 : socket.slice(1).reduce((sum, n) => sum + Number(n), 0)
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(report)
  return {
    reqPerSec: number(/Requests\/sec:\s+([0-9.]+)/),
    requests: number(/(\d+) requests in /),
    p50Ms: latencyMs(report, '50%'),
    p99Ms: latencyMs(report, '99%'),
    failed: socketErrors + (non2xx === null ? 0 : Number(non2xx[1]))
  }
}

/** A line of wrk's latency distribution, such as `99%    4.21ms`, in milliseconds. */
function latencyMs (report: string, percentile: string): number {
  const match = new RegExp(`^\\s*${percentile}\\s+([0-9.]+)(us|ms|s)\\s*$`, 'm').exec(report)
  if (match === null) throw new Error(`wrk's report has no ${percentile} latency:\n${report}`)
  const scale = { us: 0.001, ms: 1, s: 1000 }[match[2] as 'us' | 'ms' | 's']
  return Number(match[1]) * scale
}
