import type { FastifyReply } from 'fastify'
import type { PageEntry } from './entry.js'
import { digest, type Keyspace } from './keyspace.js'

/**
 * What a cached response tells a CDN in front of the app: the page's tags, its key and a catch-all token, in the
 * tag header the CDN indexes (so that a purge here can reach it), and the entry's ttl in a CDN-only control header.
 */

/** Fastly's and Varnish xkey's `surrogate-key`, Cloudflare's `cache-tag`, Akamai's `edge-cache-tag`. */
export type EdgeTagHeader = 'surrogate-key' | 'cache-tag' | 'edge-cache-tag'
/** RFC 9213's `cdn-cache-control`, or the older `surrogate-control`. */
export type EdgeControlHeader = 'surrogate-control' | 'cdn-cache-control'

export const EDGE_TAG_HEADERS: readonly EdgeTagHeader[] = ['surrogate-key', 'cache-tag', 'edge-cache-tag']
export const EDGE_CONTROL_HEADERS: readonly EdgeControlHeader[] = ['surrogate-control', 'cdn-cache-control']

export interface EdgeOptions {
  tagHeader: EdgeTagHeader
  controlHeader?: EdgeControlHeader
}

/** How one CDN reads its tag header, from its documentation. */
export interface EdgeTagRules {
  separator: string
  /** A token longer than this is replaced by its digest. */
  maxTokenBytes: number
  /** The whole header value; tokens past it are cut. */
  maxHeaderBytes: number
  maxTokens: number
  /** One character a token may carry as is; any other is percent-encoded (UTF-8). */
  allowed: RegExp
}

/** Visible ASCII but the comma: xkey splits on spaces and commas, Cloudflare on commas, and both ignore whitespace. */
const VISIBLE_BUT_COMMA = /^[!-+\--~]$/

export const EDGE_TAG_RULES: Readonly<Record<EdgeTagHeader, EdgeTagRules>> = {
  // Fastly: keys of at most 1,024 bytes, 16,384 bytes in all; keys past either limit are ignored.
  'surrogate-key': { separator: ' ', maxTokenBytes: 1024, maxHeaderBytes: 16_384, maxTokens: Infinity, allowed: VISIBLE_BUT_COMMA },
  // Cloudflare: 16 KB of header value (read as 16,000 bytes, whichever KB is meant), tags of at most 1,024 characters.
  'cache-tag': { separator: ',', maxTokenBytes: 1024, maxHeaderBytes: 16_000, maxTokens: Infinity, allowed: VISIBLE_BUT_COMMA },
  // Akamai: at most 128 tags of at most 128 characters, from RFC 7230's token characters less `*`.
  'edge-cache-tag': { separator: ',', maxTokenBytes: 128, maxHeaderBytes: Infinity, maxTokens: 128, allowed: /^[A-Za-z0-9!#$%&'^`|~+\-._]$/ }
}

/** Marks a token that stands for a value too long for the header: `~` and 22 characters of its sha256 (132 bits). */
const DIGEST_MARK = '~'
const DIGEST_CHARS = 22

function percentEncoded (char: string): string {
  let encoded = ''
  for (const byte of Buffer.from(char)) encoded += '%' + byte.toString(16).toUpperCase().padStart(2, '0')
  return encoded
}

/**
 * A tag or key as a CDN header carries it: as is when the header allows it, with other characters percent-encoded,
 * and replaced by a short digest of the value when still too long. The purge sends the same token.
 */
export function edgeToken (value: string, header: EdgeTagHeader): string {
  const rules = EDGE_TAG_RULES[header]
  let token = ''
  for (const char of value) token += rules.allowed.test(char) ? char : percentEncoded(char)
  return token.length > rules.maxTokenBytes ? DIGEST_MARK + digest(value).slice(0, DIGEST_CHARS) : token
}

/**
 * The header value of a list of tokens, in order, without repeats, cut at the header's limits. `dropped` counts the
 * tokens left out.
 */
export function edgeTagValue (tokens: readonly string[], header: EdgeTagHeader): { value: string, dropped: number } {
  const rules = EDGE_TAG_RULES[header]
  const unique = [...new Set(tokens)]
  let value = ''
  let kept = 0
  for (const token of unique) {
    const next = kept === 0 ? token : value + rules.separator + token
    if (kept === rules.maxTokens || next.length > rules.maxHeaderBytes) break
    value = next
    kept++
  }
  return { value, dropped: unique.length - kept }
}

/** The tokens already in a header value another part of the app set: kept, after the plugin's own. */
function tokensOf (header: unknown): string[] {
  if (header === undefined) return []
  return (Array.isArray(header) ? header.join(' ') : String(header)).split(/[\s,]+/).filter((token) => token !== '')
}

/** The ttl for a CDN, in RFC 9213's syntax. The response's `age` tells the CDN how much of it is left. */
export function edgeControlValue (ttlMs: number): string {
  return `max-age=${Math.max(0, Math.floor(ttlMs / 1000))}`
}

/**
 * The catch-all token every tagged response carries: `clear()` purges it. It is the plugin's prefix, so that apps
 * with different prefixes behind one CDN clear only their own pages.
 */
export function catchAllToken (keyspace: Keyspace, header: EdgeTagHeader): string {
  return edgeToken(keyspace.prefix, header)
}

/** The tokens a purge of `keys` (as the API takes them) and `tags` reaches at the edge, or of everything (`all`). */
export function purgeTokens (
  purge: { keys: readonly string[], tags: readonly string[], all: boolean }, keyspace: Keyspace, header: EdgeTagHeader
): string[] {
  if (purge.all) return [catchAllToken(keyspace, header)]
  const keys = purge.keys.map((key) => edgeToken(keyspace.logical(keyspace.storeKey(key)), header))
  return [...new Set([...keys, ...purge.tags.map((tag) => edgeToken(tag, header))])]
}

/** The edge headers of the responses the cache stored or served. */
export class EdgeHeaders {
  readonly #tagHeader: EdgeTagHeader
  readonly #controlHeader: EdgeControlHeader | undefined
  readonly #keyspace: Keyspace
  readonly #allToken: string
  readonly #onCut: (dropped: number) => void
  /** Entries with their edge headers, kept as long as the entry (an L1 entry serves many hits). */
  readonly #tagged = new WeakMap<PageEntry, PageEntry>()

  /** `onCut` hears of a tag list cut at the header's limit. */
  constructor (options: EdgeOptions, keyspace: Keyspace, onCut: (dropped: number) => void) {
    this.#tagHeader = options.tagHeader
    this.#controlHeader = options.controlHeader
    this.#keyspace = keyspace
    this.#allToken = catchAllToken(keyspace, options.tagHeader)
    this.#onCut = onCut
  }

  /**
   * A hit's entry with the edge headers among its stored ones, so that serving it (where a stored header wins) sends
   * them. The same object for every hit of an entry, unless this response already carries one of the headers.
   */
  tagged (reply: FastifyReply, storeKey: string, entry: PageEntry): PageEntry {
    const control = this.#controlHeader
    const plain = !reply.hasHeader(this.#tagHeader) && (control === undefined || !reply.hasHeader(control))
    let tagged = plain ? this.#tagged.get(entry) : undefined
    if (tagged === undefined) {
      tagged = { ...entry, headers: { ...entry.headers, ...this.#headersOf(reply, storeKey, entry) } }
      if (plain) this.#tagged.set(entry, tagged)
    }
    return tagged
  }

  /** Sets the edge headers on a response that missed and was stored, or is served in grace (`entry`: what it serves). */
  mark (reply: FastifyReply, storeKey: string, entry: PageEntry | undefined): void {
    if (entry !== undefined) reply.headers(this.#headersOf(reply, storeKey, entry))
  }

  /**
   * The catch-all token, the page's key and its tags, then any tokens the route or another plugin set in the same
   * header (spelled for it too); and the ttl, unless the response has a control header of its own.
   */
  #headersOf (reply: FastifyReply, storeKey: string, entry: PageEntry): Record<string, string> {
    const name = this.#tagHeader
    const tokens = [this.#allToken, edgeToken(this.#keyspace.logical(storeKey), name)]
    for (const tag of entry.tags) tokens.push(edgeToken(tag, name))
    for (const given of [entry.headers[name], reply.getHeader(name)]) {
      for (const token of tokensOf(given)) tokens.push(edgeToken(token, name))
    }
    const { value, dropped } = edgeTagValue(tokens, name)
    if (dropped > 0) this.#onCut(dropped)
    const headers: Record<string, string> = { [name]: value }
    const control = this.#controlHeader
    if (control !== undefined && !reply.hasHeader(control) && entry.headers[control] === undefined) {
      headers[control] = edgeControlValue(entry.ttlMs)
    }
    return headers
  }
}
