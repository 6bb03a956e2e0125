// The stress runner's own redis-server processes (test/helpers/redis.ts), never the one named by REDIS_URL: these
// scenarios kill, pause and fill their server.
import { Redis } from 'ioredis'
import { startRedis, type TestRedis } from '../../test/helpers/redis.js'
import type { Cleanup } from './scenario.js'

export type { TestRedis }

export async function ownRedis (extraArgs: string[] = []): Promise<TestRedis> {
  return await startRedis(extraArgs, { own: true })
}

/** An admin connection that does not retry for ever when its server is gone. */
export function adminClient (redis: TestRedis): Redis {
  const client = new Redis(redis.url, { maxRetriesPerRequest: 1, lazyConnect: false })
  client.on('error', () => {})
  return client
}

/** A redis-server of the scenario's own and an admin connection to it, both stopped by `cleanup`. */
export async function ownRedisWithAdmin (cleanup: Cleanup, extraArgs: string[] = []): Promise<{ redis: TestRedis, admin: Redis }> {
  const redis = await ownRedis(extraArgs)
  cleanup.add(async () => await redis.stop())
  const admin = adminClient(redis)
  cleanup.add(() => admin.disconnect())
  return { redis, admin }
}

/** `used_memory` from INFO memory, in bytes. */
export async function usedMemory (client: Redis): Promise<number> {
  const info = await client.info('memory')
  const match = /^used_memory:(\d+)/m.exec(info)
  return match === null ? Number.NaN : Number(match[1])
}

export interface KeyCensus {
  keys: number
  /** Largest key, in bytes as Redis holds it. */
  maxKeyBytes: number
  longestKey: string
  /** Keys over `limit` bytes. */
  over: string[]
  /** Most variants in one hash (its fields but the plugin's bookkeeping, whose names start with a space). */
  maxFields: number
  byType: Record<string, number>
}

/** SCANs every key under `prefix` (as raw bytes) and measures them. */
export async function census (client: Redis, prefix: string, limit: number): Promise<KeyCensus> {
  const result: KeyCensus = { keys: 0, maxKeyBytes: 0, longestKey: '', over: [], maxFields: 0, byType: {} }
  const match = prefix.replace(/[*?[\]\\]/g, '\\$&') + '*'
  let cursor = '0'
  do {
    const [next, keys] = await client.scanBuffer(cursor, 'MATCH', match, 'COUNT', 1_000)
    cursor = next.toString()
    if (keys.length === 0) continue
    const pipeline = client.pipeline()
    for (const key of keys) pipeline.type(key)
    const types = ((await pipeline.exec()) ?? []).map(([, type]) => String(type))
    const hashes = keys.filter((_key, i) => types[i] === 'hash')
    const names = hashes.length === 0 ? [] : ((await hashes.reduce((p, key) => p.hkeys(key), client.pipeline()).exec()) ?? [])
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as Buffer
      result.keys++
      result.byType[types[i] ?? '?'] = (result.byType[types[i] ?? '?'] ?? 0) + 1
      if (key.length > result.maxKeyBytes) {
        result.maxKeyBytes = key.length
        result.longestKey = key.toString('utf8').slice(0, 80) + (key.length > 80 ? '…' : '')
      }
      if (key.length > limit && result.over.length < 5) result.over.push(key.toString('utf8').slice(0, 120))
    }
    for (const [, fields] of names) {
      const variants = (fields as string[]).filter((name) => !name.startsWith(' ')).length
      result.maxFields = Math.max(result.maxFields, variants)
    }
  } while (cursor !== '0')
  return result
}
