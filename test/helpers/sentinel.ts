import type { ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis, type RedisOptions } from 'ioredis'
import { HOST, killProcess, spawnRedisServer, waitFor } from './cluster.js'
import { freePort } from './redis.js'

export const MASTER_NAME = 'mymaster'

/**
 * A master, one replica and one Sentinel watching them (quorum 1), each a child process on a loopback port. The
 * Sentinel's config file lives in a temporary directory that `stop()` removes. REDIS_URL plays no part.
 */
export interface TestSentinel {
  /** The master and replica as started; after a failover their roles are swapped. */
  master: { host: string, port: number }
  replica: { host: string, port: number }
  sentinel: { host: string, port: number }
  /** A client that finds the master through the Sentinel and follows failovers. */
  createClient (options?: RedisOptions): Redis
  /** A plain client on the Sentinel itself (SENTINEL commands). */
  sentinelClient (): Redis
  /** A plain client on one data node. */
  nodeClient (port: number): Redis
  /** The master's port as the Sentinel reports it now. */
  masterPort (): Promise<number>
  stop (): Promise<void>
}

function field (info: string, name: string): string | undefined {
  return new RegExp(`^${name}:(.*?)\\r?$`, 'm').exec(info)?.[1]
}

/** SENTINEL REPLICAS answers flat [name, value, ...] lists; this turns each into an object. */
function pairs (flat: unknown): Record<string, string> {
  const list = flat as string[]
  const record: Record<string, string> = {}
  for (let i = 0; i + 1 < list.length; i += 2) record[list[i] as string] = list[i + 1] as string
  return record
}

async function spawnOnFreePort (
  args: (port: number) => Promise<string[]>, options?: { ready?: string }
): Promise<{ port: number, child: ChildProcess }> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort()
    try {
      return { port, child: await spawnRedisServer(await args(port), options) }
    } catch (err) {
      if (attempt >= 3 || (err as Error).message.includes('cannot run')) throw err
    }
  }
}

/** Starts master, replica and Sentinel, and resolves once the Sentinel knows the replica is in sync. */
export async function startSentinel (t?: { teardown: (fn: () => unknown) => void }): Promise<TestSentinel> {
  const dir = await mkdtemp(join(tmpdir(), 'fastify-cache-sentinel-'))
  const children: ChildProcess[] = []
  const clients: Redis[] = []
  const stop = async (): Promise<void> => {
    for (const client of clients.splice(0)) client.disconnect()
    for (const child of children.splice(0)) await killProcess(child)
    await rm(dir, { recursive: true, force: true })
  }
  const nodeClient = (port: number): Redis => {
    const client = new Redis({ host: HOST, port })
    clients.push(client)
    return client
  }
  try {
    // No diskless-sync delay: the replica syncs at once rather than after 5 seconds.
    const master = await spawnOnFreePort(async (port) => ['--port', String(port), '--dir', dir, '--repl-diskless-sync-delay', '0'])
    children.push(master.child)
    const replica = await spawnOnFreePort(async (port) => [
      '--port', String(port), '--dir', dir, '--repl-diskless-sync-delay', '0', '--replicaof', HOST, String(master.port)
    ])
    children.push(replica.child)
    const replicaProbe = nodeClient(replica.port)
    await waitFor('the replica to sync', async () => field(await replicaProbe.info('replication'), 'master_link_status') === 'up')

    // Sentinel rewrites its config file as it learns the topology, so the file must be its own and writable.
    const sentinel = await spawnOnFreePort(async (port) => {
      const conf = join(dir, `sentinel-${port}.conf`)
      await writeFile(conf, [
        `port ${port}`,
        'sentinel resolve-hostnames no',
        `sentinel monitor ${MASTER_NAME} ${HOST} ${master.port} 1`,
        `sentinel down-after-milliseconds ${MASTER_NAME} 1000`,
        `sentinel failover-timeout ${MASTER_NAME} 5000`,
        ''
      ].join('\n'), { mode: 0o600 })
      return [conf, '--sentinel', '--dir', dir]
    }, { ready: '+monitor master' })
    children.push(sentinel.child)
    const sentinelProbe = nodeClient(sentinel.port)
    await waitFor('the Sentinel to see the replica in sync', async () => {
      const replicas = ((await sentinelProbe.call('SENTINEL', 'REPLICAS', MASTER_NAME)) as unknown[]).map(pairs)
      return replicas.some((info) => Number(info.port) === replica.port && info.flags === 'slave' &&
        info['master-link-status'] === 'ok')
    }, { attempts: 150 })

    const sentinelAddress = { host: HOST, port: sentinel.port }
    const result: TestSentinel = {
      master: { host: HOST, port: master.port },
      replica: { host: HOST, port: replica.port },
      sentinel: sentinelAddress,
      createClient: (options = {}) => {
        const client = new Redis({ sentinels: [sentinelAddress], name: MASTER_NAME, failoverDetector: true, ...options })
        clients.push(client)
        return client
      },
      sentinelClient: () => nodeClient(sentinel.port),
      nodeClient,
      masterPort: async () => {
        const address = (await sentinelProbe.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER_NAME)) as string[]
        return Number(address[1])
      },
      stop
    }
    t?.teardown(stop)
    return result
  } catch (err) {
    await stop()
    throw err
  }
}
