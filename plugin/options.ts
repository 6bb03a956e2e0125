import type { FastifyReply, FastifyRequest } from 'fastify'
import { EDGE_CONTROL_HEADERS, EDGE_TAG_HEADERS, type EdgeOptions } from './edge.js'
import { invalidOption } from './errors.js'
import { isTagList } from './keyspace.js'
import type { OnPurge } from './purge-reporter.js'
import type { RedisClient } from './redis-client.js'
import { VALUE_STORE_METHODS, type CacheStore } from './stores/store.js'

export const DEFAULT_PREFIX = 'fastify-cache:'
/** Seconds; Flask-Caching's CACHE_DEFAULT_TIMEOUT. */
export const DEFAULT_TTL_SECONDS = 300
/** A lookup slower than this is a miss: the page is computed rather than waiting on a sick Redis. */
export const DEFAULT_LOOKUP_TIMEOUT_MS = 50
/** Consecutive store failures that open the circuit breaker. */
export const DEFAULT_BREAKER_THRESHOLD = 5
/** How long an open breaker skips the store before one request probes it again. */
export const DEFAULT_BREAKER_COOLDOWN_MS = 1_000
/** Largest response body stored; streams are buffered only up to this. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024
/** Below about 1 KiB a compressed page saves less than its codings' framing and the work of making them. */
export const DEFAULT_COMPRESS_ABOVE_BYTES = 1024
/** Variants (query strings, vary values, memoized argument lists) kept under one key before it is reset. */
export const DEFAULT_MAX_VARIANTS = 1_000
/** Size bound of the memory store. */
export const DEFAULT_MEMORY_MAX_BYTES = 64 * 1024 * 1024
/** Direct API calls (`get`, `delete`, `clear`, …) reject with FST_CACHE_TIMEOUT past this. */
export const DEFAULT_OPERATION_TIMEOUT_MS = 2_000
/** How long concurrent requests wait for the one computing a cold key before computing themselves. */
export const DEFAULT_LOCK_TIMEOUT_MS = 10_000
/** The in-process tier (`l1`): its size bound, and the longest it keeps a page. */
export const DEFAULT_L1_MAX_BYTES = 32 * 1024 * 1024
export const DEFAULT_L1_TTL_SECONDS = 60
/** How long a delete's tombstone refuses writes computed before it. Longer than any handler should run. */
export const DEFAULT_TOMBSTONE_MS = 60_000
/** How often tag indexes are swept for members whose entry is gone. */
export const DEFAULT_TAG_PRUNE_INTERVAL_MS = 5 * 60_000
/** At most one log line per kind of store error in this window. */
export const DEFAULT_ERROR_LOG_INTERVAL_MS = 10_000
/** XFetch's beta when `refreshAhead: true`. */
export const DEFAULT_REFRESH_AHEAD_BETA = 1
export const DEFAULT_STATUS_CODES: readonly number[] = [200]
const MAX_PREFIX_BYTES = 100

export interface FastifyCacheOptions {
  /** Every key the plugin writes starts with it. Default `'fastify-cache:'`. */
  prefix?: string
  /** Seconds, like CACHE_DEFAULT_TIMEOUT. Default 300. */
  defaultTtl?: number
  /** Default: `'redis'` when `fastify.redis` (or the `redis` option) exists, otherwise `'memory'`. */
  store?: 'redis' | 'memory' | CacheStore
  /** An ioredis client or Cluster, or a URL. The plugin closes only a client it opened from a URL. */
  redis?: RedisClient | string
  lookupTimeoutMs?: number
  operationTimeoutMs?: number
  breaker?: { threshold?: number, cooldownMs?: number }
  maxBodyBytes?: number
  maxVariants?: number
  memory?: { maxBytes?: number }
  lockTimeoutMs?: number
  errorLogIntervalMs?: number
  tombstoneMs?: number
  /**
   * 'fleet' (default): a cold page is computed once across every process sharing the store, behind a short lock.
   * 'process': once per process.
   */
  singleFlight?: 'fleet' | 'process'
  /** Two tiers: decoded pages in process memory in front of the store. `true` for the defaults. */
  l1?: boolean | { maxBytes?: number, ttl?: number }
  /** Publish every delete, invalidateTags and clear on Redis pub/sub so that every instance drops its L1 copy. */
  bus?: boolean
  /** 0 turns the sweep off. */
  tagPruneIntervalMs?: number
  /** RFC 9211 `cache-status` on every response of a cached route. Default true. */
  cacheStatus?: boolean
  /** `x-cache: HIT | MISS | BYPASS | STALE` on every response of a cached route. Default true. */
  xCache?: boolean
  /**
   * A compressible page (text, JSON, XML, SVG…) of at least this many bytes is stored as br and gzip instead of
   * identity, and each hit is sent in the coding its client accepts. Default 1024; `false` stores every page as sent.
   */
  compressAbove?: number | false
  /**
   * Tags every response the cache stores or serves for a CDN: the page's tags, its key and the prefix, in `tagHeader`,
   * and its ttl in `controlHeader` when set.
   */
  edge?: EdgeOptions
  /** Called after each `delete`, `deleteMany`, `invalidateTags` and `clear` with what was purged (e.g. `httpPurger`). */
  onPurge?: OnPurge
}

export interface NormalizedOptions {
  prefix: string
  defaultTtl: number
  store: 'redis' | 'memory' | CacheStore | undefined
  redis: RedisClient | string | undefined
  lookupTimeoutMs: number
  operationTimeoutMs: number
  breakerThreshold: number
  breakerCooldownMs: number
  maxBodyBytes: number
  maxVariants: number
  memoryMaxBytes: number
  lockTimeoutMs: number
  errorLogIntervalMs: number
  tombstoneMs: number
  singleFlight: 'fleet' | 'process'
  l1: { maxBytes: number, ttlMs: number } | undefined
  bus: boolean
  tagPruneIntervalMs: number
  cacheStatus: boolean
  xCache: boolean
  /** Bytes; Infinity when pages are never stored compressed. */
  compressAbove: number
  edge: EdgeOptions | undefined
  onPurge: OnPurge | undefined
}

type Awaitable<T> = T | Promise<T>

/**
 * The request a route option's function is given. Fastify cannot hand a route's own generics to its `config`, so
 * params and query string are typed loosely here (records of `any`), and `(req) => [`post:${req.params.id}`]`
 * type-checks as it reads, with no cast.
 */
export type CacheRequest = FastifyRequest<{ Params: Record<string, any>, Querystring: Record<string, any> }>

export interface RouteCacheOptions {
  /**
   * Seconds (Flask-Caching `timeout`). Default: the plugin's `defaultTtl`. `'origin'`: the response's own
   * `cache-control` (`s-maxage`, then `max-age`), or `defaultTtl` when it has neither.
   */
  ttl?: number | 'origin'
  /** The base key (Flask-Caching `key_prefix` / `make_cache_key`). Default `view/<path>`. */
  key?: string | ((request: CacheRequest) => string)
  /** When true, the request neither reads nor writes the cache (Flask-Caching `unless`). */
  unless?: (request: CacheRequest, reply: FastifyReply) => Awaitable<boolean>
  /** When true, the handler runs and its response replaces the cached one (Flask-Caching `forced_update`). */
  forceUpdate?: boolean | ((request: CacheRequest) => Awaitable<boolean>)
  /** Return false to keep a response out of the cache (Flask-Caching `response_filter`). */
  filter?: (request: CacheRequest, reply: FastifyReply, payload: Buffer) => boolean
  /** Key the query string: `true` for all of it, or the parameter names that matter (Flask-Caching `query_string`). */
  queryString?: boolean | readonly string[]
  /** Request header names whose values select a variant. */
  vary?: readonly string[]
  /** Statuses that may be stored. Default `[200]`. */
  statusCodes?: readonly number[]
  /** Tags for `invalidateTags`. */
  tags?: readonly string[] | ((request: CacheRequest, reply: FastifyReply) => readonly string[])
  /** Seconds past the ttl during which the stale response may be served while it is refreshed. */
  staleWhileRevalidate?: number
  /** Seconds past the ttl during which the stale response is served when the handler fails. */
  grace?: number
  /** Cache responses to requests that carry `authorization`. Default false. */
  allowAuthorization?: boolean
  /**
   * With a page within `grace`: wait this long (ms) for the fresh page, computed once across the fleet, then serve the
   * stale one while the computation goes on (FusionCache's factory soft timeout).
   */
  softTimeoutMs?: number
  /** Refresh a hot page shortly before it expires, once across the fleet (XFetch). `beta` > 1 refreshes earlier. */
  refreshAhead?: boolean | { beta?: number }
}

export interface NormalizedRouteOptions {
  /** With `ttlFromOrigin`, the TTL of a response whose `cache-control` gives none. */
  ttlMs: number
  /** `ttl: 'origin'`: the response's `cache-control` sets the TTL (see handler-decisions.ts). */
  ttlFromOrigin: boolean
  key: string | ((request: FastifyRequest) => string) | undefined
  unless: ((request: FastifyRequest, reply: FastifyReply) => Awaitable<boolean>) | undefined
  forceUpdate: ((request: FastifyRequest) => Awaitable<boolean>) | undefined
  filter: ((request: FastifyRequest, reply: FastifyReply, payload: Buffer) => boolean) | undefined
  /** undefined: no query allowed (a request with one bypasses); 'all'; or the keyed names. */
  queryString: 'all' | ReadonlySet<string> | undefined
  vary: readonly string[]
  statusCodes: ReadonlySet<number>
  tags: readonly string[] | ((request: FastifyRequest, reply: FastifyReply) => readonly string[]) | undefined
  staleWhileRevalidateMs: number
  graceMs: number
  allowAuthorization: boolean
  softTimeoutMs: number | undefined
  /** XFetch's beta; undefined when refresh-ahead is off. */
  refreshAheadBeta: number | undefined
}

const PLUGIN_OPTION_NAMES = new Set<string>([
  'prefix', 'defaultTtl', 'store', 'redis', 'lookupTimeoutMs', 'operationTimeoutMs', 'breaker', 'maxBodyBytes', 'maxVariants', 'memory', 'compressAbove',
  'lockTimeoutMs', 'errorLogIntervalMs', 'tombstoneMs', 'tagPruneIntervalMs', 'singleFlight', 'l1', 'bus', 'cacheStatus',
  'xCache', 'edge', 'onPurge'
])

const ROUTE_OPTION_NAMES = new Set<string>([
  'ttl', 'key', 'unless', 'forceUpdate', 'filter', 'queryString', 'vary', 'statusCodes', 'tags',
  'staleWhileRevalidate', 'grace', 'allowAuthorization', 'softTimeoutMs', 'refreshAhead'
])

const FLASK_NAMES: Record<string, string> = {
  timeout: 'ttl',
  key_prefix: 'key',
  make_cache_key: 'key',
  forced_update: 'forceUpdate',
  response_filter: 'filter',
  query_string: 'queryString',
  cache_none: 'statusCodes'
}

function describe (value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'function') return 'a function'
  if (Array.isArray(value)) return 'an array'
  if (value === null) return 'null'
  if (typeof value === 'object') return 'an object'
  return String(value)
}

function rejectUnknown (input: object, known: Set<string>, where: string): void {
  for (const name of Object.keys(input)) {
    if (known.has(name)) continue
    const hint = FLASK_NAMES[name] !== undefined ? ` (Flask-Caching's "${name}" is "${FLASK_NAMES[name]}" here)` : ''
    throw invalidOption(where === '' ? name : `${where}.${name}`, `unknown option${hint}`)
  }
}

function positiveNumber (value: unknown, option: string, fallback: number, { integer = false } = {}): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw invalidOption(option, `expected a positive ${integer ? 'integer' : 'number'}, got ${describe(value)}`)
  }
  return value
}

/**
 * A ttl given in seconds, in milliseconds. Flask-Caching reads `timeout=0` as "never expires"; here every entry
 * expires, so 0 is refused with what to do instead.
 */
export function ttlMsOption (value: unknown, option: string, fallbackSeconds: number): number {
  if (value === 0) {
    throw invalidOption(option, 'got 0, which Flask-Caching reads as "never expires"; here every entry expires: give a ' +
      'long ttl instead (365 * 24 * 3600 is a year), and bound memory with Redis\'s maxmemory policy')
  }
  return positiveNumber(value, option, fallbackSeconds) * 1000
}

function booleanOption (value: unknown, option: string, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw invalidOption(option, `expected a boolean, got ${describe(value)}`)
  return value
}

function oneOf<T extends string> (value: unknown, option: string, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback
  if (!allowed.includes(value as T)) {
    throw invalidOption(option, `expected one of ${allowed.map((name) => `'${name}'`).join(', ')}, got ${describe(value)}`)
  }
  return value as T
}

function nonNegativeSeconds (value: unknown, option: string): number {
  if (value === undefined) return 0
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw invalidOption(option, `expected seconds (a number >= 0), got ${describe(value)}`)
  }
  return value * 1000
}

function optionalFunction<F> (value: unknown, option: string): F | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'function') throw invalidOption(option, `expected a function, got ${describe(value)}`)
  return value as F
}

function stringList (value: unknown, option: string): string[] {
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string' && item.length > 0)) {
    throw invalidOption(option, `expected an array of non-empty strings, got ${describe(value)}`)
  }
  return value
}

function isRedisClient (value: unknown): value is RedisClient {
  if (typeof value !== 'object' || value === null) return false
  const client = value as Record<string, unknown>
  // A Cluster has no scanStream of its own: each master is scanned instead.
  return typeof client.getBuffer === 'function' &&
    (typeof client.scanStream === 'function' || (client.isCluster === true && typeof client.nodes === 'function'))
}

function checkPrefix (prefix: unknown): string {
  if (typeof prefix !== 'string' || prefix.length === 0 || Buffer.byteLength(prefix) > MAX_PREFIX_BYTES ||
    /[\s\u0000-\u001f]/u.test(prefix)) { // eslint-disable-line no-control-regex
    throw invalidOption('prefix', `expected a non-empty string of at most ${MAX_PREFIX_BYTES} bytes without ` +
      `spaces or control characters, got ${describe(prefix)}`)
  }
  return prefix
}

/** A custom store is checked by its method names, like async-cache-dedupe's. */
function checkStore (store: unknown): NormalizedOptions['store'] {
  if (store === undefined || store === 'redis' || store === 'memory') return store
  if (typeof store !== 'object' || store === null) {
    throw invalidOption('store', `expected 'redis', 'memory' or a CacheStore object, got ${describe(store)}`)
  }
  const missing = VALUE_STORE_METHODS.filter((name) => typeof (store as Record<string, unknown>)[name] !== 'function')
  if (missing.length > 0) {
    throw invalidOption('store', `a custom store must implement ${VALUE_STORE_METHODS.join(', ')}; ` +
      `missing: ${missing.join(', ')}`)
  }
  return store as CacheStore
}

function checkRedis (redis: unknown, store: NormalizedOptions['store']): NormalizedOptions['redis'] {
  if (redis === undefined) return undefined
  if (typeof redis === 'string') {
    let protocol = ''
    try { protocol = new URL(redis).protocol } catch {}
    if (protocol !== 'redis:' && protocol !== 'rediss:') {
      throw invalidOption('redis', `expected a redis:// or rediss:// URL, got ${describe(redis)}`)
    }
  } else if (!isRedisClient(redis)) {
    throw invalidOption('redis', `expected an ioredis client, Cluster or URL, got ${describe(redis)}`)
  }
  if (store === 'memory') throw invalidOption('redis', "is set but store is 'memory'; drop one of them")
  return redis
}

function normalizeL1 (l1Option: unknown): NormalizedOptions['l1'] {
  if (l1Option === false) return undefined
  if (l1Option !== true && (typeof l1Option !== 'object' || l1Option === null || Array.isArray(l1Option))) {
    throw invalidOption('l1', `expected true or { maxBytes, ttl }, got ${describe(l1Option)}`)
  }
  const l1Settings = (l1Option === true ? {} : l1Option) as Record<string, unknown>
  rejectUnknown(l1Settings, new Set(['maxBytes', 'ttl']), 'l1')
  return {
    maxBytes: positiveNumber(l1Settings.maxBytes, 'l1.maxBytes', DEFAULT_L1_MAX_BYTES, { integer: true }),
    ttlMs: positiveNumber(l1Settings.ttl, 'l1.ttl', DEFAULT_L1_TTL_SECONDS) * 1000
  }
}

function normalizeEdge (edge: unknown): EdgeOptions | undefined {
  if (edge === undefined) return undefined
  if (typeof edge !== 'object' || edge === null || Array.isArray(edge)) {
    throw invalidOption('edge', `expected { tagHeader, controlHeader }, got ${describe(edge)}`)
  }
  rejectUnknown(edge, new Set(['tagHeader', 'controlHeader']), 'edge')
  const { tagHeader, controlHeader } = edge as Record<string, unknown>
  if (tagHeader === undefined) throw invalidOption('edge.tagHeader', `is required: one of ${EDGE_TAG_HEADERS.join(', ')}`)
  return {
    tagHeader: oneOf(tagHeader, 'edge.tagHeader', EDGE_TAG_HEADERS, 'surrogate-key'),
    controlHeader: controlHeader === undefined
      ? undefined
      : oneOf(controlHeader, 'edge.controlHeader', EDGE_CONTROL_HEADERS, 'surrogate-control')
  }
}

export function normalizeOptions (input: FastifyCacheOptions | undefined): NormalizedOptions {
  const options: Record<string, unknown> = (input ?? {}) as Record<string, unknown>
  if (typeof options !== 'object' || options === null) throw invalidOption('options', 'expected an object')
  rejectUnknown(options, PLUGIN_OPTION_NAMES, '')
  const prefix = checkPrefix(options.prefix ?? DEFAULT_PREFIX)
  const store = checkStore(options.store)
  const redis = checkRedis(options.redis, store)

  const breaker = options.breaker ?? {}
  if (typeof breaker !== 'object' || breaker === null || Array.isArray(breaker)) {
    throw invalidOption('breaker', `expected { threshold, cooldownMs }, got ${describe(breaker)}`)
  }
  rejectUnknown(breaker, new Set(['threshold', 'cooldownMs']), 'breaker')
  const memory = options.memory ?? {}
  if (typeof memory !== 'object' || memory === null || Array.isArray(memory)) {
    throw invalidOption('memory', `expected { maxBytes }, got ${describe(memory)}`)
  }
  rejectUnknown(memory, new Set(['maxBytes']), 'memory')

  const l1 = normalizeL1(options.l1 ?? false)
  const bus = booleanOption(options.bus, 'bus', false)
  if (bus && store === 'memory') throw invalidOption('bus', "needs Redis; the memory store is one process's own")

  return {
    prefix,
    l1,
    bus,
    cacheStatus: booleanOption(options.cacheStatus, 'cacheStatus', true),
    xCache: booleanOption(options.xCache, 'xCache', true),
    edge: normalizeEdge(options.edge),
    onPurge: optionalFunction(options.onPurge, 'onPurge'),
    compressAbove: options.compressAbove === false
      ? Infinity
      : positiveNumber(options.compressAbove, 'compressAbove', DEFAULT_COMPRESS_ABOVE_BYTES, { integer: true }),
    defaultTtl: ttlMsOption(options.defaultTtl, 'defaultTtl', DEFAULT_TTL_SECONDS) / 1000,
    store,
    redis,
    lookupTimeoutMs: positiveNumber(options.lookupTimeoutMs, 'lookupTimeoutMs', DEFAULT_LOOKUP_TIMEOUT_MS),
    operationTimeoutMs: positiveNumber(options.operationTimeoutMs, 'operationTimeoutMs', DEFAULT_OPERATION_TIMEOUT_MS),
    breakerThreshold: positiveNumber((breaker as Record<string, unknown>).threshold, 'breaker.threshold',
      DEFAULT_BREAKER_THRESHOLD, { integer: true }),
    breakerCooldownMs: positiveNumber((breaker as Record<string, unknown>).cooldownMs, 'breaker.cooldownMs',
      DEFAULT_BREAKER_COOLDOWN_MS),
    maxBodyBytes: positiveNumber(options.maxBodyBytes, 'maxBodyBytes', DEFAULT_MAX_BODY_BYTES, { integer: true }),
    maxVariants: positiveNumber(options.maxVariants, 'maxVariants', DEFAULT_MAX_VARIANTS, { integer: true }),
    memoryMaxBytes: positiveNumber((memory as Record<string, unknown>).maxBytes, 'memory.maxBytes',
      DEFAULT_MEMORY_MAX_BYTES, { integer: true }),
    lockTimeoutMs: positiveNumber(options.lockTimeoutMs, 'lockTimeoutMs', DEFAULT_LOCK_TIMEOUT_MS),
    errorLogIntervalMs: positiveNumber(options.errorLogIntervalMs, 'errorLogIntervalMs', DEFAULT_ERROR_LOG_INTERVAL_MS),
    tombstoneMs: positiveNumber(options.tombstoneMs, 'tombstoneMs', DEFAULT_TOMBSTONE_MS),
    singleFlight: oneOf(options.singleFlight, 'singleFlight', ['fleet', 'process'] as const, 'fleet'),
    tagPruneIntervalMs: options.tagPruneIntervalMs === 0
      ? 0
      : positiveNumber(options.tagPruneIntervalMs, 'tagPruneIntervalMs', DEFAULT_TAG_PRUNE_INTERVAL_MS)
  }
}

/** The soft timeout needs a stale page to fall back on: without `grace` it could never apply, so it is refused. */
function softTimeoutOption (value: unknown, graceMs: number, option: string): number | undefined {
  if (value === undefined) return undefined
  const ms = positiveNumber(value, option, 0)
  if (graceMs === 0) throw invalidOption(option, 'needs grace: the stale page served when the soft timeout passes')
  return ms
}

/** `true` is XFetch's beta of 1, the paper's optimum for a single key; `{ beta }` tunes it (> 1 refreshes earlier). */
function refreshAheadOption (value: unknown, option: string): number | undefined {
  if (value === undefined || value === false) return undefined
  if (value === true) return DEFAULT_REFRESH_AHEAD_BETA
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidOption(option, `expected true or { beta }, got ${describe(value)}`)
  }
  rejectUnknown(value, new Set(['beta']), option)
  return positiveNumber((value as { beta?: unknown }).beta, `${option}.beta`, DEFAULT_REFRESH_AHEAD_BETA)
}

function queryStringOption (value: unknown, option: string): NormalizedRouteOptions['queryString'] {
  if (value === true) return 'all'
  if (value === undefined || value === false) return undefined
  if (Array.isArray(value)) return new Set(stringList(value, option))
  throw invalidOption(option, `expected true, false or parameter names, got ${describe(value)}`)
}

function varyOption (value: unknown, option: string): readonly string[] {
  if (value === undefined) return []
  const vary = [...new Set(stringList(value, option).map((header) => header.toLowerCase()))].sort()
  for (const header of vary) {
    if (header === 'cookie' || header === 'authorization') {
      // A per-user header as a variant key stores one copy per visitor and invites leaks; use `unless` instead.
      throw invalidOption(option, `"${header}" cannot be a variant key; use "unless" for per-user pages`)
    }
  }
  return vary
}

function statusCodesOption (codes: unknown, option: string): ReadonlySet<number> {
  if (codes === undefined) return new Set(DEFAULT_STATUS_CODES)
  if (!Array.isArray(codes) || codes.length === 0 ||
    !codes.every((code) => Number.isInteger(code) && code >= 100 && code <= 599)) {
    throw invalidOption(option, `expected a non-empty array of HTTP statuses, got ${describe(codes)}`)
  }
  return new Set(codes as number[])
}

function routeTagsOption (tags: unknown, option: string): NormalizedRouteOptions['tags'] {
  if (typeof tags === 'function') return tags as NormalizedRouteOptions['tags']
  if (tags === undefined) return undefined
  if (!isTagList(tags)) throw invalidOption(option, `expected an array of non-empty strings, got ${describe(tags)}`)
  return tags
}

/**
 * Reads a route's `config.cache` once, when the route is added. `label` names the route in errors,
 * e.g. `GET /about`.
 */
export function normalizeRouteOptions (
  input: RouteCacheOptions | boolean, plugin: Pick<NormalizedOptions, 'defaultTtl'>, label: string
): NormalizedRouteOptions {
  const where = `config.cache (${label})`
  if (input !== true && (typeof input !== 'object' || input === null || Array.isArray(input))) {
    throw invalidOption(where, `expected true or an object of cache options, got ${describe(input)}`)
  }
  const options: Record<string, unknown> = input === true ? {} : input as Record<string, unknown>
  rejectUnknown(options, ROUTE_OPTION_NAMES, where)
  const name = (option: string): string => `${where}.${option}`

  // 'origin' is the only word `ttl` takes: the response's cache-control decides, with defaultTtl when it is silent.
  const ttlFromOrigin = options.ttl === 'origin'
  if (typeof options.ttl === 'string' && !ttlFromOrigin) {
    throw invalidOption(name('ttl'), `expected seconds (a positive number) or 'origin', got ${describe(options.ttl)}`)
  }
  const ttlMs = ttlMsOption(ttlFromOrigin ? undefined : options.ttl, name('ttl'), plugin.defaultTtl)

  const key = options.key
  if (key !== undefined && typeof key !== 'function' && (typeof key !== 'string' || key.length === 0)) {
    throw invalidOption(name('key'), `expected a non-empty string or a function, got ${describe(key)}`)
  }

  const forceUpdateOption = options.forceUpdate
  let forceUpdate: NormalizedRouteOptions['forceUpdate']
  if (typeof forceUpdateOption === 'boolean') {
    forceUpdate = forceUpdateOption ? () => true : undefined
  } else {
    forceUpdate = optionalFunction(forceUpdateOption, name('forceUpdate'))
  }

  const allowAuthorization = options.allowAuthorization ?? false
  if (typeof allowAuthorization !== 'boolean') {
    throw invalidOption(name('allowAuthorization'), `expected a boolean, got ${describe(allowAuthorization)}`)
  }

  const graceMs = nonNegativeSeconds(options.grace, name('grace'))
  return {
    ttlMs,
    ttlFromOrigin,
    key: key as NormalizedRouteOptions['key'],
    unless: optionalFunction(options.unless, name('unless')),
    forceUpdate,
    filter: optionalFunction(options.filter, name('filter')),
    queryString: queryStringOption(options.queryString, name('queryString')),
    vary: varyOption(options.vary, name('vary')),
    statusCodes: statusCodesOption(options.statusCodes, name('statusCodes')),
    tags: routeTagsOption(options.tags, name('tags')),
    staleWhileRevalidateMs: nonNegativeSeconds(options.staleWhileRevalidate, name('staleWhileRevalidate')),
    graceMs,
    allowAuthorization,
    softTimeoutMs: softTimeoutOption(options.softTimeoutMs, graceMs, name('softTimeoutMs')),
    refreshAheadBeta: refreshAheadOption(options.refreshAhead, name('refreshAhead'))
  }
}
