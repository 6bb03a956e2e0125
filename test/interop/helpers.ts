// Shared by the interop suite: each case runs on Redis and on the memory store, against real @fastify plugins, and
// reads responses as a client would (decoded once, headers parsed as the RFCs define them).
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib'
import { randomUUID } from 'node:crypto'
import type { Test } from 'tap'
import Fastify, { type FastifyInstance, type FastifyServerOptions, type LightMyRequestResponse } from 'fastify'
import fastifyRedis from '@fastify/redis'
import { parseList, Token } from 'structured-headers'
import type { FastifyCacheOptions } from '../../plugin/index.js'
import type { TestRedis } from '../helpers/redis.js'

export type StoreKind = 'redis' | 'memory'

/** Where a case's pages live: the file's redis-server (through @fastify/redis), or the in-process memory store. */
export interface Backend {
  kind: StoreKind
  /** The file's server; on the memory backend it is not registered with the app. */
  redis: TestRedis
}

/** Runs `fn` twice, as two subtests: on Redis (through @fastify/redis) and on the memory store. */
export function onEachStore (t: Test, redis: TestRedis, name: string, fn: (t: Test, backend: Backend) => Promise<void>): void {
  for (const kind of ['redis', 'memory'] as const) {
    t.test(`${name} [${kind}]`, async (t) => await fn(t, { kind, redis }))
  }
}

/** Both registration orders of another plugin relative to fastify-cache. */
export const ORDERS = ['before', 'after'] as const
export type Order = typeof ORDERS[number]

/**
 * A Fastify instance, closed when the test ends. On the Redis backend @fastify/redis is registered first, as the
 * README shows; the memory backend has none, so the cache picks the memory store.
 */
export async function appOn (
  t: { teardown: (fn: () => unknown) => void }, backend: Backend, options: FastifyServerOptions = {}
): Promise<FastifyInstance> {
  const app = Fastify(options)
  t.teardown(async () => await app.close())
  if (backend.kind === 'redis') await app.register(fastifyRedis, { url: backend.redis.url })
  return app
}

let apps = 0
/** A prefix per app on the file's server, so the cases of a file never meet each other's pages. */
export function uniquePrefix (backend: Backend): string {
  return `${backend.redis.prefix}interop-${randomUUID().slice(0, 6)}-${++apps}:`
}

/** fastify-cache's options for a case: its own prefix, and a lookup budget that a loaded machine cannot turn into misses. */
export function cacheOptions (backend: Backend, extra: FastifyCacheOptions = {}): FastifyCacheOptions {
  return { prefix: uniquePrefix(backend), lookupTimeoutMs: 1_000, ...extra }
}

/** Readies the app and checks that the cache runs on the backend the case is named after. */
export async function ready (t: Test, app: FastifyInstance, backend: Backend): Promise<void> {
  await app.ready()
  t.equal(app.cache.storeKind, backend.kind, `the cache runs on the ${backend.kind} store`)
}

/** The body as the client reads it: decoded once, by its `content-encoding`. A second layer stays encoded. */
export function decoded (response: LightMyRequestResponse): Buffer {
  const raw = response.rawPayload
  const encoding = response.headers['content-encoding']
  switch (encoding) {
    case undefined:
    case 'identity':
      return raw
    case 'br':
      return brotliDecompressSync(raw)
    case 'gzip':
      return gunzipSync(raw)
    case 'deflate':
      return inflateSync(raw)
    default:
      throw new Error(`content-encoding ${JSON.stringify(encoding)} is not one encoding a client decodes`)
  }
}

/** The names in a response's `vary`, lower-cased (several headers or a list). */
export function varyOf (response: LightMyRequestResponse): string[] {
  const header = response.headers.vary
  if (header === undefined) return []
  const values = Array.isArray(header) ? header : [String(header)]
  return values.flatMap((value) => value.split(',')).map((name) => name.trim().toLowerCase()).filter((name) => name !== '')
}

/** RFC 9211's Cache-Status for fastify-cache, parsed as a structured-field list; undefined when it is absent. */
export function cacheStatusOf (response: LightMyRequestResponse): Record<string, unknown> | undefined {
  const header = response.headers['cache-status']
  if (header === undefined) return undefined
  const members = parseList(Array.isArray(header) ? header.join(', ') : String(header))
  const ours = members.find(([item]) => item instanceof Token && item.toString() === 'fastify-cache')
  if (ours === undefined) return undefined
  const params: Record<string, unknown> = {}
  for (const [name, value] of ours[1]) params[name] = value instanceof Token ? value.toString() : value
  return params
}

export type CacheLabel = 'HIT' | 'MISS' | 'BYPASS' | 'STALE'

/**
 * Checks that `x-cache` says `label`, and that `cache-status` tells the same story: a hit has `hit`, a miss was
 * `stored`, a bypass neither.
 */
export function expectCache (t: Test, response: LightMyRequestResponse, label: CacheLabel, what: string): void {
  t.equal(response.headers['x-cache'], label, `${what}: x-cache ${label}`)
  const status = cacheStatusOf(response)
  t.ok(status !== undefined, `${what}: cache-status names fastify-cache`)
  if (status === undefined) return
  if (label === 'HIT') t.equal(status.hit, true, `${what}: cache-status hit`)
  if (label === 'MISS') t.same([status.hit, status.stored], [undefined, true], `${what}: cache-status fwd, stored`)
  if (label === 'BYPASS') t.same([status.hit, status.stored], [undefined, undefined], `${what}: cache-status neither hit nor stored`)
}

/** A response that was not served from the cache, whatever else it was (a miss, a bypass, or no cache at all). */
export function expectNotHit (t: Test, response: LightMyRequestResponse, what: string): void {
  t.not(response.headers['x-cache'], 'HIT', `${what}: not a hit`)
  t.not(cacheStatusOf(response)?.hit, true, `${what}: cache-status no hit`)
  t.not(cacheStatusOf(response)?.stored, true, `${what}: not stored`)
}

/** An HTML page of about `bytes` bytes, the same for one `seed`, that compresses the way real pages do. */
export function htmlPage (seed: string, bytes = 8_192): string {
  const head = `<!doctype html><html lang="en"><head><title>${seed}</title></head><body>\n`
  const tail = '</body></html>\n'
  let body = ''
  for (let i = 0; head.length + body.length + tail.length < bytes; i++) {
    body += `<p id="p${i}">Paragraph ${i} of ${seed}: ${((i * 7919) % 104729).toString(36)} lorem ipsum dolor sit amet.</p>\n`
  }
  return head + body + tail
}

/** Bytes that do not compress (a PNG or zip's body stands in here): the same for one seed. */
export function opaqueBytes (seed: number, bytes = 8_192): Buffer {
  const out = Buffer.alloc(bytes)
  let state = seed >>> 0 || 1
  for (let i = 0; i < bytes; i++) {
    state ^= state << 13; state >>>= 0
    state ^= state >>> 17
    state ^= state << 5; state >>>= 0
    out[i] = state & 0xff
  }
  return out
}
