import type { Cluster, Redis } from 'ioredis'
import type { CacheStore, StoreKeyInfo } from './store.js'

type RedisClient = Redis | Cluster

// One key per page: replace a foreign or wrong-typed value, reset a key that has collected too many variants,
// and never shorten the key's life, since its other variants may need longer. The #!lua shebang (Redis 7+) makes
// Redis refuse the script under maxmemory like any write; without it, EVAL would write past the limit.
const SET_FIELD_SCRIPT = `#!lua
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then redis.call('DEL', KEYS[1]) end
if redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) == 1 and redis.call('HLEN', KEYS[1]) > tonumber(ARGV[4]) then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
local ttl = tonumber(ARGV[3])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1`

function isWrongType (err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('WRONGTYPE')
}

async function wrongTypeIsMissing<T> (promise: Promise<T>): Promise<T | undefined> {
  try {
    return await promise
  } catch (err) {
    if (isWrongType(err)) return undefined
    throw err
  }
}

function escapeGlob (text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&')
}

function ttlMsOf (ttlMs: number): number {
  return Math.max(1, Math.ceil(ttlMs))
}

/**
 * A store on an ioredis client or Cluster. It never closes the client: whoever opened it does.
 * On a Cluster every command names one key, so nothing crosses a slot.
 */
export class RedisStore implements CacheStore {
  readonly client: RedisClient
  readonly isCluster: boolean

  constructor (client: RedisClient) {
    this.client = client
    this.isCluster = (client as Cluster).isCluster === true
  }

  async get (key: string): Promise<Buffer | undefined> {
    return (await wrongTypeIsMissing(this.client.getBuffer(key))) ?? undefined
  }

  async set (key: string, value: Buffer, ttlMs: number): Promise<void> {
    await this.client.set(key, value, 'PX', ttlMsOf(ttlMs))
  }

  async add (key: string, value: Buffer, ttlMs: number): Promise<boolean> {
    return (await this.client.set(key, value, 'PX', ttlMsOf(ttlMs), 'NX')) === 'OK'
  }

  async has (key: string): Promise<boolean> {
    return (await this.client.exists(key)) === 1
  }

  async delete (keys: string[]): Promise<number> {
    if (keys.length === 0) return 0
    if (keys.length === 1 || !this.isCluster) return await this.client.unlink(...keys)
    const counts = await Promise.all(keys.map(async (key) => await this.client.unlink(key)))
    return counts.reduce((sum, count) => sum + count, 0)
  }

  async getField (key: string, field: string): Promise<Buffer | undefined> {
    return (await wrongTypeIsMissing(this.client.hgetBuffer(key, field))) ?? undefined
  }

  async setField (key: string, field: string, value: Buffer, ttlMs: number, maxFields: number): Promise<void> {
    await this.client.eval(SET_FIELD_SCRIPT, 1, key, field, value, ttlMsOf(ttlMs), maxFields)
  }

  async deleteField (key: string, field: string): Promise<boolean> {
    return (await wrongTypeIsMissing(this.client.hdel(key, field))) === 1
  }

  private masters (): Redis[] {
    return this.isCluster ? (this.client as Cluster).nodes('master') : [this.client as Redis]
  }

  /** SCAN and UNLINK on every master, under the prefix only; never KEYS or FLUSHDB. */
  async clear (prefix: string): Promise<number> {
    let removed = 0
    for (const node of this.masters()) {
      for await (const keys of node.scanStream({ match: escapeGlob(prefix) + '*', count: 500 })) {
        const batch = keys as string[]
        if (batch.length === 0) continue
        if (this.isCluster) {
          // Keys on one master may sit in different slots; UNLINK them one by one in a pipeline.
          const pipeline = node.pipeline()
          for (const key of batch) pipeline.unlink(key)
          const results = await pipeline.exec()
          for (const [err, count] of results ?? []) {
            if (err) throw err
            removed += count as number
          }
        } else {
          removed += await node.unlink(...batch)
        }
      }
    }
    return removed
  }

  async list (prefix: string, limit: number): Promise<StoreKeyInfo[]> {
    const found: StoreKeyInfo[] = []
    for (const node of this.masters()) {
      for await (const keys of node.scanStream({ match: escapeGlob(prefix) + '*', count: 500 })) {
        const batch = (keys as string[]).slice(0, limit - found.length)
        if (batch.length === 0) continue
        const pipeline = node.pipeline()
        for (const key of batch) pipeline.pttl(key).type(key)
        const results = (await pipeline.exec()) ?? []
        for (let i = 0; i < batch.length; i++) {
          const ttlMs = results[i * 2]?.[1] as number
          if (ttlMs === -2) continue // expired between SCAN and PTTL
          const info: StoreKeyInfo = { key: batch[i] as string, ttlMs }
          if (results[i * 2 + 1]?.[1] === 'hash') info.variants = await node.hlen(info.key)
          found.push(info)
        }
        if (found.length >= limit) return found
      }
    }
    return found
  }
}
