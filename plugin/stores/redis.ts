import type { Cluster, Redis } from 'ioredis'
import { PURGED_FIELD, VERSION_FIELD, type CacheStore, type FieldRead, type StoreKeyInfo } from './store.js'

type RedisClient = Redis | Cluster

// Every script names one key, so they run on Redis Cluster. The #!lua shebang (Redis 7+) makes Redis refuse a
// script under maxmemory like any other write; without it, EVAL would write past the limit.

// How many of a hash's fields are the key's own bookkeeping rather than variants.
const INTERNAL_COUNT = `(redis.call('HEXISTS', KEYS[1], '${VERSION_FIELD}') + redis.call('HEXISTS', KEYS[1], '${PURGED_FIELD}'))`

const IS_TOMBSTONE = `(redis.call('TYPE', KEYS[1]).ok == 'hash' and redis.call('HLEN', KEYS[1]) == ${INTERNAL_COUNT})`

// A variant: replace a foreign value, refuse when a delete ran since `ifVersion` was read (or since the time
// `ifNotPurgedSince`), start over (keeping the bookkeeping) past maxFields, and never shorten the key's life, since
// its other variants may need longer.
const SET_FIELD = `#!lua
local key, field = KEYS[1], ARGV[1]
if redis.call('TYPE', key).ok ~= 'hash' then redis.call('DEL', key) end
local version = redis.call('HGET', key, '${VERSION_FIELD}')
local purged = redis.call('HGET', key, '${PURGED_FIELD}')
if (version and not tonumber(version)) or (purged and not tonumber(purged)) then
  redis.call('DEL', key)
  version, purged = nil, nil
end
if ARGV[5] ~= '' and (version or '0') ~= ARGV[5] then return 0 end
if ARGV[6] ~= '' and purged and tonumber(purged) >= tonumber(ARGV[6]) then return 0 end
local maxFields = tonumber(ARGV[4])
if redis.call('HSET', key, field, ARGV[2]) == 1 and maxFields > 0 and redis.call('HLEN', key) - ${INTERNAL_COUNT} > maxFields then
  redis.call('DEL', key)
  redis.call('HSET', key, field, ARGV[2])
  if version then redis.call('HSET', key, '${VERSION_FIELD}', version) end
  if purged then redis.call('HSET', key, '${PURGED_FIELD}', purged) end
end
local ttl = tonumber(ARGV[3])
if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
return 1`

// Returns 1 when the key held data. Leaves a tombstone with the next version and the time of the delete.
const DELETE = `#!lua
local key = KEYS[1]
local kind = redis.call('TYPE', key).ok
local version = 0
local held = 0
if kind == 'hash' then
  version = tonumber(redis.call('HGET', key, '${VERSION_FIELD}') or '0') or 0
  if redis.call('HLEN', key) > ${INTERNAL_COUNT} then held = 1 end
elseif kind ~= 'none' then
  held = 1
end
redis.call('DEL', key)
local tombstone = tonumber(ARGV[1])
if tombstone > 0 then
  local now = redis.call('TIME')
  redis.call('HSET', key, '${VERSION_FIELD}', version + 1, '${PURGED_FIELD}', now[1] * 1000 + math.floor(now[2] / 1000))
  redis.call('PEXPIRE', key, tombstone)
end
return held`

const ADD = `#!lua
if ${IS_TOMBSTONE} then redis.call('DEL', KEYS[1]) end
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return 1 end
return 0`

const HAS = `#!lua
if redis.call('EXISTS', KEYS[1]) == 0 or ${IS_TOMBSTONE} then return 0 end
return 1`

const DELETE_IF_EQUALS = `#!lua
if redis.call('TYPE', KEYS[1]).ok == 'string' and redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`

const CLUSTER_READY_TIMEOUT_MS = 5_000

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
    return (await this.client.eval(ADD, 1, key, value, ttlMsOf(ttlMs))) === 1
  }

  async has (key: string): Promise<boolean> {
    return (await this.client.eval(HAS, 1, key)) === 1
  }

  async delete (keys: string[], tombstoneMs: number): Promise<number> {
    const tombstone = tombstoneMs > 0 ? ttlMsOf(tombstoneMs) : 0
    const held = await Promise.all(keys.map(async (key) => await this.client.eval(DELETE, 1, key, tombstone)))
    return held.reduce<number>((sum, count) => sum + (count as number), 0)
  }

  async now (): Promise<number> {
    const [seconds, micros] = await this.client.time()
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)
  }

  async deleteIfEquals (key: string, value: Buffer): Promise<boolean> {
    return (await this.client.eval(DELETE_IF_EQUALS, 1, key, value)) === 1
  }

  async getField (key: string, field: string): Promise<FieldRead> {
    const found = await wrongTypeIsMissing(this.client.hmgetBuffer(key, field, VERSION_FIELD))
    if (found === undefined) return { value: undefined, version: 0, foreign: true }
    const version = found[1]
    // A version that is not a number was not written by us: read it as 0; the next write replaces the key.
    const parsed = version === null || version === undefined ? 0 : Number(version)
    if (!Number.isInteger(parsed)) return { value: undefined, version: 0, foreign: true }
    return { value: found[0] ?? undefined, version: parsed }
  }

  async setField (
    key: string, field: string, value: Buffer, ttlMs: number, maxFields: number, ifVersion?: number,
    ifNotPurgedSince?: number
  ): Promise<boolean> {
    const version = ifVersion === undefined ? '' : String(ifVersion)
    const since = ifNotPurgedSince === undefined ? '' : String(Math.floor(ifNotPurgedSince))
    return (await this.client.eval(SET_FIELD, 1, key, field, value, ttlMsOf(ttlMs), maxFields, version, since)) === 1
  }

  async deleteField (key: string, field: string): Promise<boolean> {
    return (await wrongTypeIsMissing(this.client.hdel(key, field))) === 1
  }

  async fields (key: string): Promise<string[]> {
    const names = (await wrongTypeIsMissing(this.client.hkeys(key))) ?? []
    return names.filter((name) => name !== VERSION_FIELD && name !== PURGED_FIELD)
  }

  /** Every master; a Cluster client knows them only once it has loaded the slot map, so wait for that. */
  private async masters (): Promise<Redis[]> {
    if (!this.isCluster) return [this.client as Redis]
    const cluster = this.client as Cluster
    if (cluster.status !== 'ready') {
      if (cluster.status === 'wait') cluster.connect().catch(() => {})
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the Redis Cluster client is not ready')), CLUSTER_READY_TIMEOUT_MS)
        cluster.once('ready', () => { clearTimeout(timer); resolve() })
      })
    }
    return cluster.nodes('master')
  }

  /** SCAN and UNLINK on every master, under the prefix only: nothing outside it is ever touched. */
  async clear (prefix: string): Promise<number> {
    let removed = 0
    for (const node of await this.masters()) {
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
    for (const node of await this.masters()) {
      for await (const keys of node.scanStream({ match: escapeGlob(prefix) + '*', count: 500 })) {
        const batch = keys as string[]
        if (batch.length === 0) continue
        const pipeline = node.pipeline()
        for (const key of batch) pipeline.pttl(key).type(key).hlen(key).hexists(key, VERSION_FIELD).hexists(key, PURGED_FIELD)
        const results = (await pipeline.exec()) ?? []
        for (let i = 0; i < batch.length && found.length < limit; i++) {
          const [ttl, type, length, versioned, purged] = results.slice(i * 5, i * 5 + 5).map((result) => result[1])
          if (ttl === -2) continue // expired between SCAN and PTTL
          const info: StoreKeyInfo = { key: batch[i] as string, ttlMs: ttl as number }
          if (type === 'hash') {
            info.variants = (length as number) - (versioned as number) - (purged as number)
            if (info.variants === 0) continue // a tombstone holds no data
          }
          found.push(info)
        }
        if (found.length >= limit) return found
      }
    }
    return found
  }
}
