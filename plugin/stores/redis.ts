import type { Cluster, Redis } from 'ioredis'
import { createHash } from 'node:crypto'
import calculateSlot from 'cluster-key-slot'
import type { RedisClient } from '../redis-client.js'
import {
  LOCK_FIELD_PREFIX, PURGED_FIELD, VERSION_FIELD, WRITTEN_FIELD_PREFIX, isInternalField, storeTtlMs, type DeleteOptions, type FieldLock, type FieldRead,
  type GetFieldOptions, type PageStore, type SetFieldOptions, type StoreKeyInfo
} from './store.js'

// A script's keys share one slot (batches are split by slot), so they run on Redis Cluster. The #!lua shebang
// (Redis 7+) makes Redis refuse a script under maxmemory like any other write; without it, EVAL would write past the
// limit. The lock scripts write a few bytes and say allow-oom: a full Redis must still serve pages and let their
// locks go.
// Scripts are sent in full once per client connection (EVAL), then run by SHA (EVALSHA): see run().

const INTERNAL = 'string.byte(name, 1) == 32'

// Whether a field key holds a variant, not only bookkeeping (version, purge time, locks). Rare calls: it walks the names.
const HAS_DATA = `
local function hasData (key)
  if redis.call('TYPE', key).ok ~= 'hash' then return redis.call('EXISTS', key) == 1 end
  for _, name in ipairs(redis.call('HKEYS', key)) do if not (${INTERNAL}) then return true end end
  return false
end`

// The store's clock, in ms, and a variant's lock state: 'held' when another holder's lock is live.
const LOCKS = `
local function nowMs ()
  local now = redis.call('TIME')
  return tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
end
-- A lock lives until its expiry, but never longer than the lock timeout from now: an expiry planted far in the
-- future (or left by a clock that jumped) cannot stall a page for longer than one computation may take.
local function live (lock, now, ttl)
  if not lock then return false end
  local expires = tonumber(string.match(lock, ' (%d+)$'))
  return expires ~= nil and expires > now and expires <= now + ttl
end
local function takeLock (key, lockField, token, ttl, now)
  redis.call('HSET', key, lockField, token .. ' ' .. (now + ttl))
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end`

// Reads variants and locks the missing ones, atomically; many lookups in one call (a batch, see Batcher). Per key,
// ARGV holds 4 values: field, token, lock ttl ms, '1' to take only an expired lock. Per key, it returns
// value, version, state, and the store's clock (so that a miss needs no call of its own to read it): state 0 free,
// 1 held, 2 taken, 3 foreign (nothing is locked on foreign data).
const GET_OR_LOCK = `#!lua flags=allow-oom
${LOCKS}
local function getOrLock (key, field, token, ttl, takeOverOnly, now)
  local lockField = '${LOCK_FIELD_PREFIX}' .. field
  local found = redis.pcall('HMGET', key, field, '${VERSION_FIELD}', lockField)
  if found.err or (found[2] and not tonumber(found[2])) then return false, false, 3 end
  if live(found[3], now, tonumber(ttl)) then return found[1], found[2], 1 end
  if found[1] or (takeOverOnly == '1' and not found[3]) then return found[1], found[2], 0 end
  takeLock(key, lockField, token, tonumber(ttl), now)
  return false, found[2], 2
end
local now = nowMs()
local out = {}
for i, key in ipairs(KEYS) do
  local a = (i - 1) * 4
  local value, version, state = getOrLock(key, ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], now)
  out[#out + 1] = value
  out[#out + 1] = version
  out[#out + 1] = state
  out[#out + 1] = now
end
return out`

// ARGV: field, token, lock ttl ms. Takes the lock whether or not the variant is stored; 1 when taken.
const LOCK = `#!lua flags=allow-oom
${LOCKS}
local key = KEYS[1]
local lockField = '${LOCK_FIELD_PREFIX}' .. ARGV[1]
local kind = redis.call('TYPE', key).ok
if kind ~= 'hash' and kind ~= 'none' then return 0 end
local now = nowMs()
if live(redis.call('HGET', key, lockField), now, tonumber(ARGV[3])) then return 0 end
takeLock(key, lockField, ARGV[2], tonumber(ARGV[3]), now)
return 1`

// ARGV: field, token.
const UNLOCK = `#!lua flags=allow-oom
local key = KEYS[1]
local lockField = '${LOCK_FIELD_PREFIX}' .. ARGV[1]
if redis.call('TYPE', key).ok ~= 'hash' then return 0 end
local lock = redis.call('HGET', key, lockField)
if lock and string.sub(lock, 1, #ARGV[2] + 1) == ARGV[2] .. ' ' then return redis.call('HDEL', key, lockField) end
return 0`

// Variants, many in one call (a batch, see Batcher). Each replaces a foreign value, releases the writer's lock,
// is refused when a delete ran since \`ifVersion\` was read (or since the time \`ifNotPurgedSince\`), starts its key
// over (keeping the bookkeeping and locks) past maxFields, and never shortens the key's life, since its other
// variants may need longer. Per key, ARGV holds 7 values: field, value, ttl ms, maxFields, ifVersion or '',
// ifNotPurgedSince or '', unlock token or ''. Per key, it returns 1 when written, else 0.
const SET_FIELD = `#!lua
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
-- Past maxFields variants, drops the least recently written down to half the bound (so that a stream of new variants
-- pays for this once per maxFields / 2 writes), never the plain variant '' nor the one just written.
local function evictOldest (key, maxFields, written)
  local variants = {}
  for _, name in ipairs(redis.call('HKEYS', key)) do if not (${INTERNAL}) then variants[#variants + 1] = name end end
  if #variants <= maxFields then return end
  local stamps = {}
  for i, name in ipairs(variants) do stamps[i] = '${WRITTEN_FIELD_PREFIX}' .. name end
  -- In slices: unpack() takes at most a few thousand values.
  local times = {}
  for from = 1, #stamps, 1000 do
    local slice = redis.call('HMGET', key, unpack(stamps, from, math.min(from + 999, #stamps)))
    for _, at in ipairs(slice) do times[#times + 1] = at end
  end
  local candidates, sorted = {}, {}
  for i, name in ipairs(variants) do
    if name ~= '' and name ~= written then
      local at = tonumber(times[i]) or 0
      candidates[#candidates + 1] = { name, at }
      sorted[#sorted + 1] = at
    end
  end
  -- A plain numeric sort (no Lua comparator) finds the cut-off time; every candidate up to it goes.
  table.sort(sorted)
  local drop = math.min(#variants - math.floor(maxFields / 2), #sorted)
  if drop < 1 then return end
  local cutoff = sorted[drop]
  for _, candidate in ipairs(candidates) do
    if drop > 0 and candidate[2] <= cutoff then
      redis.call('HDEL', key, candidate[1], '${WRITTEN_FIELD_PREFIX}' .. candidate[1])
      drop = drop - 1
    end
  end
end
local function setField (key, field, value, ttl, maxFields, ifVersion, ifNotPurgedSince, unlock)
  local lockField = '${LOCK_FIELD_PREFIX}' .. field
  local found = redis.pcall('HMGET', key, '${VERSION_FIELD}', '${PURGED_FIELD}', lockField)
  local version, purged, lock
  if found.err then
    redis.call('DEL', key)
  else
    version, purged, lock = found[1], found[2], found[3]
    if (version and not tonumber(version)) or (purged and not tonumber(purged)) then
      redis.call('DEL', key)
      version, purged, lock = nil, nil, nil
    end
  end
  if unlock ~= '' and lock and string.sub(lock, 1, #unlock + 1) == unlock .. ' ' then redis.call('HDEL', key, lockField) end
  if ifVersion ~= '' and (version or '0') ~= ifVersion then return 0 end
  if ifNotPurgedSince ~= '' and purged and tonumber(purged) >= tonumber(ifNotPurgedSince) then return 0 end
  maxFields = tonumber(maxFields)
  if maxFields == 0 then
    redis.call('HSET', key, field, value)
  else
    -- Bounded keys note when each variant was written (the store's clock), so that the least recent go first.
    if redis.call('HSET', key, field, value, '${WRITTEN_FIELD_PREFIX}' .. field, now) > 0 and
      redis.call('HLEN', key) > 2 * maxFields then evictOldest(key, maxFields, field) end
  end
  ttl = tonumber(ttl)
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
  return 1
end
local out = {}
for i, key in ipairs(KEYS) do
  local a = (i - 1) * 7
  out[i] = setField(key, ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], ARGV[a + 6], ARGV[a + 7])
end
return out`

// Returns 1 when the key held data. Leaves a tombstone with the next version and the time of the delete.
const DELETE = `#!lua
${HAS_DATA}
local key = KEYS[1]
local version = 0
if redis.call('TYPE', key).ok == 'hash' then
  version = tonumber(redis.call('HGET', key, '${VERSION_FIELD}') or '0') or 0
end
local held = 0
if hasData(key) then held = 1 end
redis.call('DEL', key)
local tombstone = tonumber(ARGV[1])
if tombstone > 0 then
  local now = redis.call('TIME')
  redis.call('HSET', key, '${VERSION_FIELD}', version + 1, '${PURGED_FIELD}', now[1] * 1000 + math.floor(now[2] / 1000))
  redis.call('PEXPIRE', key, tombstone)
end
return held`

const ADD = `#!lua
${HAS_DATA}
if not hasData(KEYS[1]) then redis.call('DEL', KEYS[1]) end
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return 1 end
return 0`

const HAS = `#!lua
${HAS_DATA}
if hasData(KEYS[1]) then return 1 end
return 0`

// Variants of a field key (fields that are not bookkeeping), or -1 for a plain value.
const VARIANTS = `#!lua flags=no-writes
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return -1 end
local count = 0
for _, name in ipairs(redis.call('HKEYS', KEYS[1])) do if not (${INTERNAL}) then count = count + 1 end end
return count`

/** A Lua script run by its SHA1, sent in full only when a server does not know it yet. */
class Script {
  readonly sha: string
  constructor (readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex')
  }
}

const scripts = {
  getOrLock: new Script(GET_OR_LOCK),
  lock: new Script(LOCK),
  unlock: new Script(UNLOCK),
  setField: new Script(SET_FIELD),
  delete: new Script(DELETE),
  add: new Script(ADD),
  has: new Script(HAS),
  variants: new Script(VARIANTS)
}

const CLUSTER_READY_TIMEOUT_MS = 5_000
/**
 * The most lookups one script call carries, and the most bytes of pages one write call carries: Redis runs nothing
 * else while a script runs, and every call in a batch waits for the whole of it.
 */
const MAX_BATCH = 64
const MAX_BATCH_BYTES = 1024 * 1024

type Arg = string | Buffer | number

interface BatchOp {
  key: string
  args: Arg[]
  resolve: (reply: unknown[]) => void
  reject: (err: unknown) => void
}

/** Lookups, or writes, issued one after another: sent as one call of their script. */
interface Batch {
  script: Script
  /** How many values the script answers per key. */
  width: number
  ops: BatchOp[]
  /** Bytes of the Buffer arguments (the pages being written). */
  bytes: number
}

function isRefusedWrite (err: unknown): boolean {
  return err instanceof Error && /^(READONLY|NOREPLICAS) /.test(err.message)
}

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

/**
 * A store on an ioredis client or Cluster. It never closes the client: whoever opened it does.
 * On a Cluster no command crosses a slot: batches of lookups or writes are split by slot.
 */
export class RedisStore implements PageStore {
  readonly client: RedisClient
  readonly isCluster: boolean

  /** The scripts each server has been sent in full since this client connected to it, as `<node> <sha>`. */
  private readonly loaded = new Set<string>()
  /** Lookups and writes waiting for the end of this turn of the event loop (see batched). */
  private queue: Batch[] = []
  /** A flush is scheduled: on the next tick (writes), at the end of this turn of the loop (lookups). */
  private flushSoon = false
  private flushLater = false

  constructor (client: RedisClient) {
    this.client = client
    this.isCluster = (client as Cluster).isCluster === true
    // A new connection may reach a server that restarted and forgot its scripts; a Cluster's nodes may change.
    client.on('ready', () => this.loaded.clear())
    if (this.isCluster) client.on('-node', () => this.loaded.clear())
  }

  /**
   * The server a call on `key` goes to: on a Cluster, the master of its slot in the client's slot map (unknown before
   * the map is loaded: such a call always sends the script in full); '' for a single server. `slot`: the key's, when
   * the caller has it already.
   */
  private nodeOf (key: string, slot?: number): string | undefined {
    if (!this.isCluster) return ''
    return (this.client as Cluster).slots[slot ?? calculateSlot(key)]?.[0]
  }

  async get (key: string): Promise<Buffer | undefined> {
    return (await wrongTypeIsMissing(this.direct.getBuffer(key))) ?? undefined
  }

  async set (key: string, value: Buffer, ttlMs: number): Promise<void> {
    await this.direct.set(key, value, 'PX', storeTtlMs(ttlMs))
  }

  /**
   * Runs a script. Its first run on each server (on a Cluster, each master), and the first after a reconnect, sends
   * the source (EVAL), which also caches it in Redis; later runs send only its SHA (EVALSHA). Sending the source first
   * keeps the order of commands: an EVALSHA refused with NOSCRIPT and sent again would run after the commands issued
   * behind it (left for a server that lost its scripts without this client reconnecting).
   */
  private async run (script: Script, keys: string[], args: Arg[], slot?: number): Promise<unknown> {
    // The Buffer forms keep replies as bytes. (Not callBuffer: ioredis's auto-pipelining drops its command name.)
    const client = this.client as unknown as Record<'evalBuffer' | 'evalshaBuffer', (...args: unknown[]) => Promise<unknown>>
    const node = this.nodeOf(keys[0] as string, slot)
    const id = node + ' ' + script.sha
    if (node === undefined || !this.loaded.has(id)) {
      const result = await client.evalBuffer(script.source, keys.length, ...keys, ...args)
      if (node !== undefined) this.loaded.add(id)
      return result
    }
    try {
      return await client.evalshaBuffer(script.sha, keys.length, ...keys, ...args)
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err
      this.loaded.delete(id)
      return await this.run(script, keys, args, slot)
    }
  }

  /** A script on one key, sent at once (after the batches issued before it, so the order of calls holds). */
  private async runOne (script: Script, key: string, ...args: Arg[]): Promise<unknown> {
    this.flush()
    return await this.run(script, [key], args)
  }

  /**
   * Page lookups and writes are queued, so that the ones issued together share one script call (and Redis runs one
   * script for all of them, not one each). Lookups wait for the end of this turn of the event loop, which gathers
   * the requests that arrived together. Writes go out before anything else happens (process.nextTick): a response is
   * never complete before its page is on its way to Redis, and the writes of requests that were answered by the same
   * reply still share a call. Calls keep their order: a run of lookups, then a run of writes, and so on; any other
   * command sends what is queued first.
   */
  private batched (script: Script, width: number, key: string, args: Arg[], soon: boolean): Promise<unknown[]> {
    let bytes = 0
    for (const arg of args) if (Buffer.isBuffer(arg)) bytes += arg.length
    let batch = this.queue[this.queue.length - 1]
    if (batch === undefined || batch.script !== script || batch.ops.length >= MAX_BATCH ||
      (batch.bytes > 0 && batch.bytes + bytes > MAX_BATCH_BYTES)) {
      batch = { script, width, ops: [], bytes: 0 }
      this.queue.push(batch)
    }
    batch.bytes += bytes
    const ops = batch.ops
    if (soon) {
      if (!this.flushSoon) {
        this.flushSoon = true
        process.nextTick(this.flushQueue)
      }
    } else if (!this.flushLater) {
      this.flushLater = true
      setImmediate(this.flushQueue)
    }
    return new Promise((resolve, reject) => { ops.push({ key, args, resolve, reject }) })
  }

  private readonly flushQueue = (): void => { this.flush() }

  /** The client, for a command sent at once: what is queued goes first. */
  private get direct (): RedisClient {
    this.flush()
    return this.client
  }

  /** Sends every queued batch, in order; on a Cluster one call per slot, since a script's keys share one. */
  private flush (): void {
    this.flushSoon = false
    this.flushLater = false
    if (this.queue.length === 0) return
    const queue = this.queue
    this.queue = []
    for (const batch of queue) {
      if (!this.isCluster) {
        this.send(batch, batch.ops)
        continue
      }
      const bySlot = new Map<number, BatchOp[]>()
      for (const op of batch.ops) {
        const slot = calculateSlot(op.key)
        const ops = bySlot.get(slot)
        if (ops === undefined) bySlot.set(slot, [op])
        else ops.push(op)
      }
      for (const [slot, ops] of bySlot) this.send(batch, ops, slot)
    }
  }

  /** One script call for `ops`; `slot`, on a Cluster, is the hash slot their keys share. */
  private send (batch: Batch, ops: BatchOp[], slot?: number): void {
    this.run(batch.script, ops.map((op) => op.key), ops.flatMap((op) => op.args), slot).then((reply) => {
      // Anything else is not this script's answer (a connection that mixed up replies): a failure, like no answer.
      if (!Array.isArray(reply) || reply.length !== ops.length * batch.width) {
        throw new Error(`unexpected reply to a batch of ${ops.length} store calls`)
      }
      for (let i = 0; i < ops.length; i++) (ops[i] as BatchOp).resolve(reply.slice(i * batch.width, (i + 1) * batch.width))
    }).catch((err: unknown) => {
      if (batch.script === scripts.getOrLock && isRefusedWrite(err)) this.readWithoutLocks(ops)
      else for (const op of ops) op.reject(err)
    })
  }

  /**
   * A replica (or a master short of its min-replicas) refuses the lookup script, since it may write a lock: read the
   * pages without one, so stored pages are still served. A lookup reads as 'free': the caller computes unlocked.
   */
  private readWithoutLocks (ops: BatchOp[]): void {
    for (const op of ops) {
      this.direct.hmgetBuffer(op.key, op.args[0] as string, VERSION_FIELD).then(
        ([value, version]) => op.resolve([value, version, 0, null]),
        (err: unknown) => { if (isWrongType(err)) op.resolve([null, null, 3, null]); else op.reject(err) })
    }
  }

  async add (key: string, value: Buffer, ttlMs: number): Promise<boolean> {
    return (await this.runOne(scripts.add, key, value, storeTtlMs(ttlMs))) === 1
  }

  async has (key: string): Promise<boolean> {
    return (await this.runOne(scripts.has, key)) === 1
  }

  async delete (keys: string[], { tombstoneMs = 0 }: DeleteOptions = {}): Promise<number> {
    const tombstone = tombstoneMs > 0 ? storeTtlMs(tombstoneMs) : 0
    const held = await Promise.all(keys.map(async (key) => await this.runOne(scripts.delete, key, tombstone)))
    return held.reduce<number>((sum, count) => sum + (count as number), 0)
  }

  async now (): Promise<number> {
    const [seconds, micros] = await this.direct.time()
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)
  }

  /**
   * Without a lock, a plain HMGET of the variant and the version. With one, a single script reads them and, when the
   * variant is missing with no live lock on it, locks it, atomically: one round trip whether it hits or misses.
   */
  async getField (key: string, field: string, { lock }: GetFieldOptions = {}): Promise<FieldRead> {
    let value: Buffer | null | undefined
    let version: Buffer | null | undefined
    let state = -1
    let now: number | null = null
    if (lock === undefined) {
      const found = await wrongTypeIsMissing(this.direct.hmgetBuffer(key, field, VERSION_FIELD))
      // Foreign data carries no lock: the caller computes without one, and its write replaces the key.
      if (found === undefined) return { value: undefined, version: 0, foreign: true }
      ;[value, version] = found
    } else {
      const locked = await this.batched(scripts.getOrLock, 4, key,
        [field, lock.token, storeTtlMs(lock.ttlMs), lock.takeOverOnly === true ? '1' : ''], false) as [Buffer | null, Buffer | null, number, number | null]
      ;[value, version, state, now] = locked
      if (state === 3) return { value: undefined, version: 0, foreign: true }
    }
    // A version that is not a number was not written by us: read it as 0; the next write replaces the key.
    const parsed = version === null || version === undefined ? 0 : Number(String(version))
    const read: FieldRead = Number.isInteger(parsed)
      ? { value: value ?? undefined, version: parsed }
      : { value: undefined, version: 0, foreign: true }
    if (state !== -1 && read.foreign !== true) read.lock = state === 2 ? 'taken' : state === 1 ? 'held' : 'free'
    if (now !== null) read.now = now
    return read
  }

  async lockField (key: string, field: string, lock: FieldLock): Promise<boolean> {
    return (await this.runOne(scripts.lock, key, field, lock.token, storeTtlMs(lock.ttlMs))) === 1
  }

  async unlockField (key: string, field: string, token: string): Promise<boolean> {
    return (await this.runOne(scripts.unlock, key, field, token)) === 1
  }

  async setField (key: string, field: string, value: Buffer, options: SetFieldOptions): Promise<boolean> {
    const { ttlMs, maxFields = 0, ifVersion, ifNotPurgedSince, unlock } = options
    const version = ifVersion === undefined ? '' : String(ifVersion)
    const since = ifNotPurgedSince === undefined ? '' : String(Math.floor(ifNotPurgedSince))
    const [written] = await this.batched(scripts.setField, 1, key,
      [field, value, storeTtlMs(ttlMs), maxFields, version, since, unlock ?? ''], true)
    return written === 1
  }

  async deleteField (key: string, field: string): Promise<boolean> {
    return (await wrongTypeIsMissing(this.direct.hdel(key, field, WRITTEN_FIELD_PREFIX + field))) as number > 0
  }

  async fields (key: string): Promise<string[]> {
    const names = (await wrongTypeIsMissing(this.direct.hkeys(key))) ?? []
    return names.filter((name) => !isInternalField(name))
  }

  /** Every master; a Cluster client knows them only once it has loaded the slot map, so wait for that. */
  private async masters (): Promise<Redis[]> {
    this.flush()
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
          // exec() resolves null only for a transaction aborted by WATCH; a plain pipeline always has its results.
          const results = await pipeline.exec() as Array<[Error | null, unknown]>
          for (const [err, count] of results) {
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
        const [ttls, variants] = await Promise.all([
          Promise.all(batch.map(async (key) => await node.pttl(key))),
          Promise.all(batch.map(async (key) => await this.runOne(scripts.variants, key) as number))
        ])
        for (let i = 0; i < batch.length && found.length < limit; i++) {
          const ttl = ttls[i] as number
          // A key that expired (or was deleted) between SCAN and PTTL: a race between two commands, which no test can
          // time without stubbing the client (SCAN itself skips keys already expired).
          /* c8 ignore next */
          if (ttl === -2) continue
          const info: StoreKeyInfo = { key: batch[i] as string, ttlMs: ttl }
          const count = variants[i] as number
          if (count >= 0) {
            if (count === 0) continue // a tombstone, or locks of pages being computed: no data
            info.variants = count
          }
          found.push(info)
        }
        if (found.length >= limit) return found
      }
    }
    return found
  }
}
