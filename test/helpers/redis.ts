import { Redis } from 'ioredis'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { randomUUID } from 'node:crypto'

/**
 * A real redis-server for tests: started as a child process on a free loopback port, with nothing kept on disk.
 * When REDIS_URL is set, that server is used instead and never stopped, flushed, paused or restarted; only keys under
 * the test's own prefix are touched there. A test that kills, pauses or reconfigures its server asks for one of its
 * own (`own`), which it gets even when REDIS_URL is set.
 */
export interface TestRedis {
  url: string
  port: number
  /** True when the server comes from REDIS_URL: kill and restart are refused. */
  external: boolean
  /** A prefix no other test uses, so tests can share a server. */
  prefix: string
  kill (): Promise<void>
  restart (): Promise<void>
  stop (): Promise<void>
}

export async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  server.close()
  await once(server, 'close')
  return port
}

async function spawnRedis (port: number, extraArgs: string[]): Promise<ChildProcess> {
  const child = spawn('redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no',
    '--daemonize', 'no', ...extraArgs
  ], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start on ${port}:\n${output}`)), 10_000)
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer)
        resolve()
      }
    })
    child.once('error', (err) => {
      clearTimeout(timer)
      reject(new Error(`cannot run redis-server (apt-get install redis-server): ${err.message}`))
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`redis-server exited with ${code}:\n${output}`))
    })
  })
  await ready
  child.stdout?.resume()
  child.stderr?.resume()
  return child
}

async function killChild (child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGKILL')
  await exited
}

export interface StartOptions {
  /**
   * A server this process starts and may kill, pause or reconfigure, even when REDIS_URL names a shared one. Implied by
   * `extraArgs`, which only a server of our own can be started with.
   */
  own?: boolean
}

export async function startRedis (extraArgs: string[] = [], options: StartOptions = {}): Promise<TestRedis> {
  const prefix = `test-${randomUUID().slice(0, 8)}:`
  const external = process.env.REDIS_URL
  if (external !== undefined && external !== '' && options.own !== true && extraArgs.length === 0) {
    const refuse = async (): Promise<void> => { throw new Error('cannot kill or restart the server named by REDIS_URL') }
    return { url: external, port: Number(new URL(external).port || 6379), external: true, prefix, kill: refuse, restart: refuse, stop: async () => {} }
  }
  let port = 0
  let child: ChildProcess | undefined
  for (let attempt = 0; child === undefined; attempt++) {
    port = await freePort()
    try {
      child = await spawnRedis(port, extraArgs)
    } catch (err) {
      if (attempt >= 3 || (err as Error).message.includes('cannot run')) throw err
    }
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    external: false,
    prefix,
    kill: async () => {
      await killChild(child)
      child = undefined
    },
    restart: async () => {
      await killChild(child)
      child = await spawnRedis(port, extraArgs)
    },
    stop: async () => {
      await killChild(child)
      child = undefined
    }
  }
}

/** Starts a server for one test (or file) and stops it when the test ends. */
export async function redisForTest (
  t: { teardown: (fn: () => unknown) => void }, extraArgs: string[] = [], options: StartOptions = {}
): Promise<TestRedis> {
  const redis = await startRedis(extraArgs, options)
  t.teardown(async () => await redis.stop())
  return redis
}

/**
 * One server for a whole test file, with a client on it for looking behind the plugin's back; both are closed when
 * the file's tests end.
 */
export async function redisForFile (
  t: { teardown: (fn: () => unknown) => void }, options: StartOptions = {}
): Promise<{ redis: TestRedis, client: Redis }> {
  const redis = await startRedis([], options)
  const client = new Redis(redis.url)
  t.teardown(async () => {
    await client.quit()
    await redis.stop()
  })
  return { redis, client }
}

export { setTimeout as sleep } from 'node:timers/promises'

/** The variants of a page or memoize hash: its fields but the plugin's own bookkeeping (names starting with a space). */
export async function variantCount (client: Pick<Redis, 'hkeys'>, key: string): Promise<number> {
  return (await client.hkeys(key)).filter((name) => !name.startsWith(' ')).length
}

/**
 * Every fleet lock held under `prefix`, as `<key> <variant>`: the `' lock <variant>'` fields of the page hashes
 * (plugin/stores/store.ts). Once no request is in flight, each one left is a lock nobody will release.
 */
export async function fleetLocks (client: Redis, prefix: string): Promise<string[]> {
  const found: string[] = []
  for await (const keys of client.scanStream({ match: prefix.replace(/[*?[\]\\]/g, '\\$&') + '*', count: 1_000 })) {
    for (const key of keys as string[]) {
      if (await client.type(key) !== 'hash') continue
      for (const field of await client.hkeys(key)) {
        if (field.startsWith(' lock ')) found.push(`${key} ${field.slice(' lock '.length)}`)
      }
    }
  }
  return found
}
