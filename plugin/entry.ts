import { FST_CACHE_CORRUPT_ENTRY, FST_CACHE_INVALID_VALUE } from './errors.js'
import { isStorableHeader } from './http-semantics.js'
import { digest, isTagList } from './keyspace.js'
import type { Encoded } from './encodings.js'
import { isVaryOn, type VaryOn } from './response-vary.js'

/**
 * Stored layout, one buffer: 'FCE1' | kind (1 byte) | header length (uint32 BE) | header JSON | body bytes.
 * The body stays raw bytes (no base64, no JSON-escaped HTML), so a hit parses only the small header and sends
 * a view of the stored buffer.
 */
const MAGIC = 0x46434531 // 'FCE1'
const KIND_PAGE = 0x50 // 'P'
const KIND_VALUE = 0x56 // 'V'
const PREAMBLE_BYTES = 9

const EMPTY_BODY = Buffer.alloc(0)

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const HEADER_VALUE = /^[\t\u0020-\u007e\u0080-\u00ff]*$/

/** An entity tag as RFC 9110 §8.8.3 spells it; a handler's etag that is not one is replaced by the plugin's own. */
const ENTITY_TAG = /^(?:W\/)?"[\u0021\u0023-\u007e\u0080-\u00ff]*"$/

export function isEntityTag (value: unknown): value is string {
  return typeof value === 'string' && ENTITY_TAG.test(value)
}

function isHeaderValue (value: unknown): boolean {
  return typeof value === 'string' && HEADER_VALUE.test(value)
}

/** Milliseconds since the epoch, as a stored entry may carry them: a finite, positive number. */
function isTime (value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0
}

function isDuration (value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0
}

/**
 * Every stored header must be one the plugin would store: a header planted in the store (a cookie, framing, a
 * hop-by-hop header) makes the entry corrupt rather than being served.
 */
function checkStoredHeaders (headers: unknown): headers is Record<string, string | string[]> {
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) return false
  for (const name in headers) {
    const value = (headers as Record<string, unknown>)[name]
    if (!HEADER_NAME.test(name) || name !== name.toLowerCase() || !isStorableHeader(name)) return false
    if (!(Array.isArray(value) ? value.every(isHeaderValue) : isHeaderValue(value))) return false
  }
  return true
}

export interface PageEntry {
  status: number
  headers: Record<string, string | string[]>
  body: Buffer
  /** Milliseconds since the epoch. */
  createdAt: number
  ttlMs: number
  etag: string
  /** Extra milliseconds a stale copy may still be served (stale-while-revalidate, grace). */
  staleMs: number
  tags: readonly string[]
  /** The request headers the response varies on (its own `Vary`), with the values it was made for. */
  varyOn?: VaryOn
  /** Stored compressed: the representations, and `body` is empty (identity is decoded for a client that needs it). */
  encoded?: Encoded
  /** How long the page took to compute, in ms: refresh-ahead's delta. Absent in entries stored before it was kept. */
  computeMs?: number
}

export interface ValueEntry {
  value: unknown
  createdAt: number
  ttlMs: number
}

interface PageHeader {
  s: number
  /** Body length: a truncated entry is caught, not served. */
  n: number
  h: Record<string, string | string[]>
  c: number
  t: number
  e: string
  x?: number
  g?: readonly string[]
  v?: VaryOn
  /** Stored compressed: the byte lengths of br and gzip, in that order, which make up the body. */
  z?: [number, number]
  d?: number
}

interface ValueHeader {
  c: number
  t: number
}

function byteLength (body: Buffer | string): number {
  return typeof body === 'string' ? Buffer.byteLength(body) : body.length
}

/** A string body is encoded once, straight into the returned buffer. */
function frame (kind: number, header: object, body: Buffer | string, bodyBytes = byteLength(body)): Buffer {
  const headerJson = JSON.stringify(header)
  const headerBytes = Buffer.byteLength(headerJson)
  const out = Buffer.allocUnsafe(PREAMBLE_BYTES + headerBytes + bodyBytes)
  out.writeUInt32BE(MAGIC, 0)
  out[4] = kind
  out.writeUInt32BE(headerBytes, 5)
  out.write(headerJson, PREAMBLE_BYTES, 'utf8')
  const written = typeof body === 'string'
    ? out.write(body, PREAMBLE_BYTES + headerBytes, 'utf8')
    : body.copy(out, PREAMBLE_BYTES + headerBytes)
  // The buffer is not zeroed: a body shorter than announced would store (and send) whatever memory held before.
  const actual = typeof body === 'string' ? written : body.length
  if (actual !== bodyBytes) throw new RangeError(`the body is ${actual} bytes, not the ${bodyBytes} announced`)
  return out
}

function unframe (bytes: Buffer, expectedKind: number): { header: Record<string, unknown>, bodyOffset: number } {
  if (bytes.length < PREAMBLE_BYTES || bytes.readUInt32BE(0) !== MAGIC) {
    throw new FST_CACHE_CORRUPT_ENTRY('missing the FCE1 preamble')
  }
  if (bytes[4] !== expectedKind) {
    throw new FST_CACHE_CORRUPT_ENTRY(`expected a ${expectedKind === KIND_PAGE ? 'page' : 'value'} entry`)
  }
  const headerBytes = bytes.readUInt32BE(5)
  const bodyOffset = PREAMBLE_BYTES + headerBytes
  if (bodyOffset > bytes.length) throw new FST_CACHE_CORRUPT_ENTRY('truncated header')
  let header: unknown
  try {
    header = JSON.parse(bytes.toString('utf8', PREAMBLE_BYTES, bodyOffset))
  } catch {
    throw new FST_CACHE_CORRUPT_ENTRY('unreadable header')
  }
  if (typeof header !== 'object' || header === null || !isTime((header as ValueHeader).c) ||
    !isDuration((header as ValueHeader).t)) {
    throw new FST_CACHE_CORRUPT_ENTRY('malformed header')
  }
  return { header: header as Record<string, unknown>, bodyOffset }
}

/** A strong validator of the body bytes (a string's are its UTF-8, as they are stored and sent). */
export function etagOf (body: Buffer | string): string {
  return '"' + digest(body, 'sha1') + '"'
}

/** The length of `digest(…, 'sha1')`: 20 bytes in unpadded base64url. */
const ETAG_DIGEST_CHARS = 27
/** Holds the place of an etag computed from the framed body: as long as one, in the header's JSON. */
const ETAG_PLACEHOLDER = '"' + '0'.repeat(ETAG_DIGEST_CHARS) + '"'
/** Where the digest of an etag goes in a header that starts with it: after `{"e":"\"`. */
const ETAG_DIGEST_OFFSET = PREAMBLE_BYTES + '{"e":"\\"'.length

export function encodePage (entry: PageEntry): Buffer {
  return entry.encoded === undefined ? framePage(entry, entry.body).bytes : frameEncodedPage(entry, entry.encoded)
}

/** A page stored compressed: br (if kept) then gzip make up the body, and the etag is the identity bytes' (given). */
export function frameEncodedPage (meta: Omit<PageEntry, 'body' | 'encoded'>, encoded: Encoded): Buffer {
  const br = encoded.br ?? EMPTY_BODY
  const size = br.length + encoded.gzip.length
  const header: PageHeader = { e: meta.etag, s: meta.status, n: size, h: meta.headers, c: meta.createdAt, t: meta.ttlMs }
  if (meta.staleMs > 0) header.x = meta.staleMs
  if (meta.tags.length > 0) header.g = meta.tags
  if (meta.varyOn !== undefined) header.v = meta.varyOn
  header.z = [br.length, encoded.gzip.length]
  return frame(KIND_PAGE, header, Buffer.concat([br, encoded.gzip], size), size)
}

/** br's length (0: not kept), then gzip's, which is always there: together, the body. */
function isEncodedLengths (z: unknown, total: number): z is [number, number] {
  return Array.isArray(z) && z.length === 2 && Number.isInteger(z[0]) && z[0] >= 0 && Number.isInteger(z[1]) && z[1] > 0 &&
    z[0] + z[1] === total
}

/**
 * Frames a page whose body may still be the handler's string: it is encoded once, into the stored bytes, and `body` is
 * a view of them, sent as the response. (`Buffer.from` first, then a frame, would copy it twice.) Without an `etag`,
 * it is `etagOf` the framed body, written into its place in the header afterwards: hashing bytes is twice as fast as
 * hashing a string, which is encoded first.
 */
export function framePage (
  meta: Omit<PageEntry, 'body' | 'etag'> & { etag?: string }, body: Buffer | string, bodyBytes = byteLength(body)
): { bytes: Buffer, body: Buffer, etag: string } {
  // The etag comes first, so that its place in the JSON is known.
  const header: PageHeader = {
    e: meta.etag ?? ETAG_PLACEHOLDER, s: meta.status, n: bodyBytes, h: meta.headers, c: meta.createdAt, t: meta.ttlMs
  }
  if (meta.staleMs > 0) header.x = meta.staleMs
  if (meta.tags.length > 0) header.g = meta.tags
  if (meta.varyOn !== undefined) header.v = meta.varyOn
  if (meta.computeMs !== undefined) header.d = meta.computeMs
  const bytes = frame(KIND_PAGE, header, body, bodyBytes)
  const view = bytes.subarray(bytes.length - bodyBytes)
  if (meta.etag !== undefined) return { bytes, body: view, etag: meta.etag }
  const hashed = digest(view, 'sha1')
  bytes.write(hashed, ETAG_DIGEST_OFFSET, 'latin1')
  return { bytes, body: view, etag: '"' + hashed + '"' }
}

/**
 * Decodes a page; the body is a view of `bytes`, not a copy. Every field is checked, since anyone who can write to the
 * store can plant an entry. Throws FST_CACHE_CORRUPT_ENTRY.
 */
export function decodePage (bytes: Buffer): PageEntry {
  const { header, bodyOffset } = unframe(bytes, KIND_PAGE)
  const page = header as unknown as PageHeader
  if (!Number.isInteger(page.s) || page.s < 200 || page.s > 599 || typeof page.e !== 'string' || !ENTITY_TAG.test(page.e)) {
    throw new FST_CACHE_CORRUPT_ENTRY('malformed page header')
  }
  if (page.n !== bytes.length - bodyOffset) throw new FST_CACHE_CORRUPT_ENTRY('truncated body')
  if ((page.x !== undefined && !isDuration(page.x)) || (page.g !== undefined && !isTagList(page.g)) ||
    (page.v !== undefined && !isVaryOn(page.v)) || (page.z !== undefined && !isEncodedLengths(page.z, page.n)) ||
    (page.d !== undefined && !isDuration(page.d))) {
    throw new FST_CACHE_CORRUPT_ENTRY('malformed page header')
  }
  // Node refuses a bad header name or value only when the response is written, past any hook: check them here.
  if (!checkStoredHeaders(page.h)) throw new FST_CACHE_CORRUPT_ENTRY('malformed stored header')
  const entry: PageEntry = {
    status: page.s,
    headers: page.h,
    body: page.z === undefined ? bytes.subarray(bodyOffset) : EMPTY_BODY,
    createdAt: page.c,
    ttlMs: page.t,
    etag: page.e,
    staleMs: page.x ?? 0,
    tags: page.g ?? []
  }
  if (page.v !== undefined) entry.varyOn = page.v
  if (page.z !== undefined) {
    const brEnd = bodyOffset + page.z[0]
    const gzip = bytes.subarray(brEnd)
    entry.encoded = page.z[0] === 0 ? { gzip } : { br: bytes.subarray(bodyOffset, brEnd), gzip }
  }
  if (page.d !== undefined) entry.computeMs = page.d
  return entry
}

/** Values are JSON, never pickled or evaluated. `key` only names the value in the error. */
export function encodeValue (key: string, value: unknown, ttlMs: number, now = Date.now()): Buffer {
  let json: string | undefined
  try {
    json = JSON.stringify(value)
  } catch (err) {
    throw new FST_CACHE_INVALID_VALUE(key, (err as Error).message)
  }
  if (json === undefined) throw new FST_CACHE_INVALID_VALUE(key, `${typeof value} is not a JSON value`)
  const header: ValueHeader = { c: now, t: ttlMs }
  return frame(KIND_VALUE, header, json)
}

export function decodeValue (bytes: Buffer): ValueEntry {
  const { header, bodyOffset } = unframe(bytes, KIND_VALUE)
  let value: unknown
  try {
    value = JSON.parse(bytes.toString('utf8', bodyOffset))
  } catch {
    throw new FST_CACHE_CORRUPT_ENTRY('unreadable value')
  }
  return { value, createdAt: header.c as number, ttlMs: header.t as number }
}

/** Milliseconds until the entry stops being fresh; negative once it is stale. */
export function freshForMs (entry: { createdAt: number, ttlMs: number }, now: number): number {
  return entry.createdAt + entry.ttlMs - now
}
