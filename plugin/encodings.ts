import { negotiate } from '@fastify/accept-negotiator'
import { promisify } from 'node:util'
import { brotliCompress, brotliDecompress, constants, gunzip, gzip, inflate } from 'node:zlib'

/**
 * Content codings, as Varnish keeps them: a page worth compressing is stored compressed, once per miss, and each hit
 * goes out in the coding its client accepts, without compressing anything on the request path.
 */

export type Coding = 'br' | 'gzip'

/** A page's compressed representations, as stored: gzip always, br when it earns its bytes (`compressBoth`). */
export interface Encoded {
  br?: Buffer
  gzip: Buffer
}

/** Most preferred first: on equal q-values a client gets br, the smaller. */
const CODINGS: Coding[] = ['br', 'gzip']

const brotli = promisify(brotliCompress)
const unbrotli = promisify(brotliDecompress)
const gzipAsync = promisify(gzip)
const gunzipAsync = promisify(gunzip)
const inflateAsync = promisify(inflate)

/** Text, and the structured text formats; images, archives, audio and video are compressed already. */
const COMPRESSIBLE = /^(?:text\/|application\/(?:json|javascript|ecmascript|xml|xhtml\+xml|rss\+xml|atom\+xml|ld\+json|manifest\+json|wasm)|image\/svg\+xml|application\/[\w.+-]+\+(?:json|xml))/i

export function isCompressible (contentType: unknown): boolean {
  return typeof contentType === 'string' && COMPRESSIBLE.test(contentType)
}

/**
 * The codings a page is stored in, made off the event loop (zlib's thread pool), once per miss. Brotli at quality 5
 * and gzip at 6: most of the gain of the top levels at a small part of their time, which a miss waits for. br is kept
 * only when both together take at most half the identity bytes: on a small page it saves a client a few hundred bytes
 * and costs the store more than that, and every client that takes br takes gzip.
 */
export async function compressBoth (body: Buffer): Promise<Encoded> {
  const [br, gz] = await Promise.all([
    brotli(body, {
      params: {
        [constants.BROTLI_PARAM_QUALITY]: 5,
        [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
        [constants.BROTLI_PARAM_SIZE_HINT]: body.length
      }
    }),
    gzipAsync(body, { level: 6 })
  ])
  return br.length + gz.length <= body.length / 2 ? { br, gzip: gz } : { gzip: gz }
}

/** The identity bytes of a page stored compressed, for the rare client that accepts neither coding. */
export async function identityOf (encoded: Encoded): Promise<Buffer> {
  return await gunzipAsync(encoded.gzip)
}

/** A body some other part of the app compressed already (a handler's `reply.compress`): its identity bytes, or undefined. */
export async function decodeCoding (coding: string, body: Buffer): Promise<Buffer | undefined> {
  switch (coding.trim().toLowerCase()) {
    case 'gzip': case 'x-gzip': return await gunzipAsync(body)
    case 'br': return await unbrotli(body)
    case 'deflate': return await inflateAsync(body)
    default: return undefined
  }
}

const GZIP_ONLY: Coding[] = ['gzip']

/** The coding a client gets of those stored (`Accept-Encoding`, q-values included), or undefined for identity. */
export function negotiateCoding (acceptEncoding: string | undefined, encoded: Encoded): Coding | undefined {
  if (acceptEncoding === undefined || acceptEncoding === '') return undefined
  // Content codings are case-insensitive (RFC 9110 §8.4.1); the negotiator compares them as written.
  return (negotiate(acceptEncoding.toLowerCase(), encoded.br === undefined ? GZIP_ONLY : CODINGS) as Coding | null) ?? undefined
}

/**
 * Each representation has its own strong validator (RFC 9110 §8.8.3.3: a strong etag changes with the bytes); a weak
 * one may be shared, since the codings are semantically equivalent.
 */
export function etagFor (etag: string, coding: Coding | undefined): string {
  if (coding === undefined || etag.startsWith('W/')) return etag
  return etag.slice(0, -1) + '-' + coding + '"'
}
