import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Cluster, Redis, type ClusterOptions } from 'ioredis'

/**
 * Real Redis Cluster for tests: three masters, no replicas, each a child process on a loopback port, with nothing
 * kept beyond a temporary directory that `stop()` removes. REDIS_URL plays no part: a cluster is always started here.
 */
export interface TestCluster {
  nodes: Array<{ host: string, port: number }>
  /** An ioredis Cluster on these nodes; `stop()` disconnects every client made here. */
  createClient (options?: ClusterOptions): Cluster
  /** A plain client on one node, for looking behind the Cluster client's back; also disconnected by `stop()`. */
  nodeClient (port: number): Redis
  /** SIGKILLs one node; the others keep running. */
  kill (port: number): Promise<void>
  stop (): Promise<void>
}

export const HOST = '127.0.0.1'

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

/** Whether nothing listens on this loopback port. */
async function isFree (port: number): Promise<boolean> {
  const server = createServer()
  return await new Promise((resolve) => {
    server.once('error', () => resolve(false))
    server.listen(port, HOST, () => server.close(() => resolve(true)))
  })
}

/** A port P where P and its cluster bus port P + 10000 are both free, and not among `taken`. */
async function freeClusterPort (taken: ReadonlySet<number>): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 20_000)
    if (taken.has(port) || taken.has(port + 10_000) || taken.has(port - 10_000)) continue
    if (await isFree(port) && await isFree(port + 10_000)) return port
  }
  throw new Error('no free port pair P, P+10000 on 127.0.0.1')
}

// Should the test process end without running its teardowns (a tap timeout, an uncaught error), its servers go too.
const running = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

/**
 * Spawns redis-server with `args` (which must include the port or a config file) on loopback, persisting nothing,
 * and resolves once it logs that it is ready. Rejects, with its output, when it exits first.
 */
export async function spawnRedisServer (args: string[], { ready = 'Ready to accept connections' } = {}): Promise<ChildProcess> {
  const child = spawn('redis-server', [
    ...args, '--bind', HOST, '--save', '', '--appendonly', 'no', '--protected-mode', 'no', '--daemonize', 'no'
  ], { stdio: ['ignore', 'pipe', 'pipe'] })
  running.add(child)
  child.once('exit', () => running.delete(child))
  let output = ''
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server ${args.join(' ')} did not start:\n${output}`)), 10_000)
      const collect = (chunk: Buffer): void => {
        output += chunk.toString()
        if (output.includes(ready)) {
          clearTimeout(timer)
          resolve()
        }
      }
      child.stdout?.on('data', collect)
      child.stderr?.on('data', collect)
      child.once('error', (err) => {
        clearTimeout(timer)
        reject(new Error(`cannot run redis-server (apt-get install redis-server): ${err.message}`))
      })
      child.once('exit', (code) => {
        clearTimeout(timer)
        reject(new Error(`redis-server ${args.join(' ')} exited with ${code}:\n${output}`))
      })
    })
  } catch (err) {
    await killProcess(child)
    throw err
  }
  child.stdout?.removeAllListeners('data').resume()
  child.stderr?.removeAllListeners('data').resume()
  return child
}

export async function killProcess (child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGKILL')
  await exited
}

async function run (command: string, args: string[]): Promise<string> {
  return await new Promise((resolve, reject) => {
    execFile(command, args, { timeout: 30_000 }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`${command} ${args.join(' ')} failed: ${err.message}\n${stdout}${stderr}`))
      else resolve(stdout)
    })
  })
}

/** Polls `check` up to `attempts` times, `intervalMs` apart, until it resolves true; rejects with `what` otherwise. */
export async function waitFor (what: string, check: () => Promise<boolean>, { attempts = 100, intervalMs = 100 } = {}): Promise<void> {
  let last: unknown
  for (let attempt = 0; attempt < attempts; attempt++) {
    try {
      if (await check()) return
    } catch (err) {
      last = err
    }
    await sleep(intervalMs)
  }
  throw new Error(`gave up waiting for ${what}${last === undefined ? '' : `: ${String(last)}`}`)
}

async function startNodes (dir: string, count: number): Promise<Map<number, ChildProcess>> {
  const children = new Map<number, ChildProcess>()
  try {
    while (children.size < count) {
      const port = await freeClusterPort(new Set(children.keys()))
      try {
        children.set(port, await spawnRedisServer([
          '--port', String(port), '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`),
          '--cluster-node-timeout', '2000', '--dir', dir
        ]))
      } catch (err) {
        // Another process may have taken the port between the check and the bind: try another one, unless
        // redis-server cannot run at all.
        if ((err as Error).message.includes('cannot run')) throw err
      }
    }
    return children
  } catch (err) {
    for (const child of children.values()) await killProcess(child)
    throw err
  }
}

/** Starts a three-master cluster. With `t`, stops it when the test ends. */
export async function startCluster (t?: { teardown: (fn: () => unknown) => void }): Promise<TestCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'fastify-cache-cluster-'))
  const clients: Array<Redis | Cluster> = []
  let children = new Map<number, ChildProcess>()
  const stop = async (): Promise<void> => {
    for (const client of clients.splice(0)) client.disconnect()
    for (const child of children.values()) await killProcess(child)
    await rm(dir, { recursive: true, force: true })
  }
  try {
    children = await startNodes(dir, 3)
    const ports = [...children.keys()]
    await run('redis-cli', [
      '--cluster', 'create', ...ports.map((port) => `${HOST}:${port}`), '--cluster-replicas', '0', '--cluster-yes'
    ])
    const probe = ports.map((port) => new Redis({ host: HOST, port, lazyConnect: true }))
    try {
      await waitFor('cluster_state:ok on every node', async () => {
        const infos = await Promise.all(probe.map(async (client) => await client.cluster('INFO')))
        return infos.every((info) => /cluster_state:ok/.test(info) && /cluster_slots_assigned:16384/.test(info) &&
          /cluster_known_nodes:3\b/.test(info))
      })
    } finally {
      for (const client of probe) client.disconnect()
    }
    const nodes = ports.map((port) => ({ host: HOST, port }))
    const cluster: TestCluster = {
      nodes,
      createClient: (options = {}) => {
        const client = new Cluster(nodes, options)
        clients.push(client)
        return client
      },
      nodeClient: (port) => {
        const client = new Redis({ host: HOST, port })
        clients.push(client)
        return client
      },
      kill: async (port) => await killProcess(children.get(port)),
      stop
    }
    t?.teardown(stop)
    return cluster
  } catch (err) {
    await stop()
    throw err
  }
}
