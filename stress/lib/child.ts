// Child processes of the stress runner: servers (which print {"stressPort": n} once they listen) and load generators
// (which print JSON events). Every child is started with tsx from the repository root and stopped by its own pid.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { childEnv } from '../../test/helpers/child.js'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

export interface LogLine {
  /** When the runner read it, epoch ms. */
  at: number
  line: Record<string, unknown>
}

export interface Child {
  process: ChildProcess
  /** JSON lines printed on stdout (server logs, loader events), in order. */
  lines: LogLine[]
  stderr: () => string
  /** Resolves with the first line for which `match` is true (already printed or still to come). */
  waitFor: (match: (line: Record<string, unknown>) => boolean, timeoutMs: number) => Promise<Record<string, unknown>>
  /** True when it exited before stop() was called. */
  crashed: () => boolean
  stop: () => Promise<void>
}

export function startChild (script: string, config: unknown, name: string): Child {
  const env = childEnv({ STRESS_CONFIG: JSON.stringify(config) })
  delete env.REDIS_URL // a child only ever talks to the servers the runner started
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, script)], {
    cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe']
  })
  const lines: LogLine[] = []
  const waiters: Array<{ match: (line: Record<string, unknown>) => boolean, resolve: (line: Record<string, unknown>) => void }> = []
  let stderr = ''
  let stopping = false
  child.stderr?.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-20_000) })
  createInterface({ input: child.stdout! }).on('line', (text) => {
    let line: Record<string, unknown>
    try {
      line = JSON.parse(text) as Record<string, unknown>
    } catch {
      line = { text }
    }
    lines.push({ at: Date.now(), line })
    for (const waiter of [...waiters]) {
      if (waiter.match(line)) {
        waiters.splice(waiters.indexOf(waiter), 1)
        waiter.resolve(line)
      }
    }
  })
  const exited = once(child, 'exit')
  return {
    process: child,
    lines,
    stderr: () => stderr,
    crashed: () => !stopping && (child.exitCode !== null || child.signalCode !== null),
    waitFor: async (match, timeoutMs) => {
      const seen = lines.find((entry) => match(entry.line))
      if (seen !== undefined) return seen.line
      return await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${name}: no expected line within ${timeoutMs} ms\n${stderr}`)), timeoutMs)
        const onExit = (): void => {
          clearTimeout(timer)
          reject(new Error(`${name} exited (${child.exitCode ?? child.signalCode}) before the expected line\n${stderr}`))
        }
        child.once('exit', onExit)
        waiters.push({
          match,
          resolve: (line) => {
            clearTimeout(timer)
            child.off('exit', onExit)
            resolve(line)
          }
        })
      })
    },
    stop: async () => {
      stopping = true
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
      await exited
      clearTimeout(timer)
    }
  }
}

export interface Server {
  child: Child
  port: number
  url: string
}

/** Starts a server script and waits until it listens. */
export async function startServer (script: string, config: unknown, name: string): Promise<Server> {
  const child = startChild(script, config, name)
  try {
    const ready = await child.waitFor((line) => typeof line.stressPort === 'number', 60_000)
    const port = ready.stressPort as number
    return { child, port, url: `http://127.0.0.1:${port}` }
  } catch (err) {
    await child.stop()
    throw err
  }
}
