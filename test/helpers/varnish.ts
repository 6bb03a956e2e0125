import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const VARNISHD = '/usr/sbin/varnishd'
const XKEY = '/usr/lib/x86_64-linux-gnu/varnish/vmods/libvmod_xkey.so'
/** The VCL the repo ships for the demo blog; its backend port is replaced by the test's. */
export const DEMO_VCL = new URL('../../demo-blog/varnish/default.vcl', import.meta.url)

export interface TestVarnish {
  /** `http://127.0.0.1:<port>`, no trailing slash. */
  url: string
  port: number
  stop: () => Promise<void>
}

/** The PIDs of a process's children (varnishd's manager forks the cache process). */
function childrenOf (pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return []
  }
}

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Polls until Varnish answers on its port (a PURGE without keys: answered by Varnish itself, never the backend). */
async function untilAnswering (port: number, manager: ChildProcess, output: () => string): Promise<void> {
  for (let attempt = 0; attempt < 2_000; attempt++) {
    if (manager.exitCode !== null || manager.signalCode !== null) {
      throw new Error(`varnishd exited (${manager.exitCode ?? manager.signalCode}):\n${output()}`)
    }
    try {
      const response = await fetch(`http://127.0.0.1:${port}/`, { method: 'PURGE' })
      await response.arrayBuffer()
      if (response.headers.has('x-varnish')) return
    } catch {}
    await new Promise((resolve) => setTimeout(resolve, 10)) // the pace of the poll, not a wait for anything
  }
  throw new Error(`varnishd did not answer on ${port}:\n${output()}`)
}

/**
 * Debian's varnishd in the foreground on `port` (loopback), with its own working directory and the repo's VCL aimed at
 * `backendPort`. The port is the caller's, as the app behind Varnish must know it before it starts (its purges go
 * there): take one from `freePort()`. `-j none`: the tests may run as root, where the default jail would drop to the
 * varnish user, which cannot read a private temp directory. Stopped, with its cache process, when the test ends.
 */
export async function startVarnish (
  t: { teardown: (fn: () => unknown) => void }, { port, backendPort, vcl = DEMO_VCL }: { port: number, backendPort: number, vcl?: URL }
): Promise<TestVarnish> {
  if (!existsSync(VARNISHD) || !existsSync(XKEY)) {
    throw new Error(`the edge tests need Debian's varnish and varnish-modules (${VARNISHD}, ${XKEY}): ` +
      'apt-get install varnish varnish-modules')
  }
  const dir = mkdtempSync(join(tmpdir(), 'varnish-test-'))
  const vclPath = join(dir, 'test.vcl')
  const source = readFileSync(vcl, 'utf8')
  const aimed = source.replace(/\.port = "\d+";/, `.port = "${backendPort}";`)
  if (aimed === source) throw new Error('the VCL has no backend port to replace')
  writeFileSync(vclPath, aimed)
  const manager = spawn(VARNISHD, [
    '-F', '-j', 'none', '-n', join(dir, 'work'), '-a', `127.0.0.1:${port}`, '-T', 'none', '-f', vclPath, '-s', 'malloc,32m'
  ], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  manager.stdout?.on('data', (chunk: Buffer) => { output += chunk.toString() })
  manager.stderr?.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const stop = async (): Promise<void> => {
    if (manager.exitCode === null && manager.signalCode === null) {
      const workers = childrenOf(manager.pid as number)
      const exited = once(manager, 'exit')
      manager.kill('SIGTERM') // the manager stops its cache process, then exits
      await exited
      for (const pid of workers) if (alive(pid)) process.kill(pid, 'SIGKILL')
    }
    rmSync(dir, { recursive: true, force: true })
  }
  t.teardown(stop)
  await untilAnswering(port, manager, () => output)
  return { url: `http://127.0.0.1:${port}`, port, stop }
}
