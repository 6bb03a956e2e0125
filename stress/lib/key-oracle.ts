// Properties of the page key (plugin/key.ts), checked against references that do not share its code.
//
// (a) URL level: a request is generated as a *logical* URL (path segments of tokens, query pairs, vary values) and
//     written out in one of its many equivalent spellings (unreserved characters literal or escaped, hex in either
//     case, '+' or %20 for a space, bare names or `name=`, empty pieces between pairs, a header as one value or as
//     repeated lines). Two requests must share a key exactly when their normalised forms are equal, where the
//     normalised form is the README's: unreserved escapes decoded, other escapes upper-cased, reserved characters
//     kept as sent; the query decoded and stably sorted by name (keyed names only); vary values as sent (absent and
//     empty differ).
// (b) Parser agreement: two requests whose handler sees a different query (as Fastify parses it) must never share a
//     key, or one would be served the other's page.
import fc from 'fast-check'
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import { MAX_KEY_BYTES } from '../../plugin/index.js'
import { requestKey } from '../../plugin/key.js'
import { normalizeRouteOptions, type NormalizedRouteOptions, type RouteCacheOptions } from '../../plugin/options.js'

export const PREFIX = 'fastify-cache:'

type Token = { lit: string } | { pct: number }
interface LogicalUrl {
  segments: Token[][]
  /** undefined: no '?' at all. */
  query: Array<[string, string]> | undefined
  vary: Array<string | undefined>
}

export interface KeyedRoute {
  name: string
  options: RouteCacheOptions
  route: NormalizedRouteOptions
}

function keyedRoute (name: string, options: RouteCacheOptions): KeyedRoute {
  return { name, options, route: normalizeRouteOptions(options, { defaultTtl: 300 }, `GET ${name}`) }
}

export const KEYED_ROUTES: KeyedRoute[] = [
  keyedRoute('no query', {}),
  keyedRoute('queryString: true', { queryString: true }),
  keyedRoute("queryString: ['page']", { queryString: ['page'] }),
  keyedRoute("vary: ['accept-language', 'x-variant']", { vary: ['accept-language', 'x-variant'] }),
  keyedRoute("queryString: true, vary: ['accept-language']", { queryString: true, vary: ['accept-language'] })
]

const UNRESERVED = /^[A-Za-z0-9\-._~]$/
const HEX = (byte: number): string => byte.toString(16).padStart(2, '0')

/** A tiny PRNG, so that one integer picks a whole spelling (and shrinks to the plainest one). */
function chooser (seed: number): () => boolean {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6D2B79F5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) % 2 === 1
  }
}

function escape (byte: number, coin: () => boolean): string {
  const hex = HEX(byte)
  return '%' + (coin() ? hex.toUpperCase() : hex)
}

function renderPath (segments: Token[][], coin: () => boolean): string {
  return '/' + segments.map((tokens) => tokens.map((token) => {
    if ('pct' in token) return escape(token.pct, coin)
    if (UNRESERVED.test(token.lit) && coin()) return escape(token.lit.charCodeAt(0), coin)
    return token.lit
  }).join('')).join('/')
}

/** Form-encodes with a random, equivalent spelling of every character. */
function renderForm (text: string, coin: () => boolean): string {
  let out = ''
  for (const char of text) {
    if (char === ' ') {
      out += coin() ? '+' : '%20'
    } else if (UNRESERVED.test(char) || "!$'()*,;:@/?".includes(char)) {
      out += coin() ? char : escape(char.charCodeAt(0), coin)
    } else if (char.charCodeAt(0) > 0x7f && coin()) {
      out += char // a raw non-ASCII character is UTF-8-encoded then decoded: the same value
    } else {
      for (const byte of Buffer.from(char)) out += escape(byte, coin)
    }
  }
  return out
}

function renderQuery (pairs: Array<[string, string]>, coin: () => boolean): string {
  const pieces = pairs.map(([name, value]) => {
    const head = renderForm(name, coin)
    if (value === '' && name !== '' && coin()) return head
    return `${head}=${renderForm(value, coin)}`
  })
  if (coin()) pieces.splice(pieces.length === 0 ? 0 : 1, 0, '') // an empty piece: '&&'
  return pieces.join('&')
}

export interface FakeRequest {
  url: string
  headers: Record<string, string | string[]>
}

export function render (url: LogicalUrl, route: KeyedRoute, spelling: number): FakeRequest {
  const coin = chooser(spelling)
  let target = renderPath(url.segments, coin)
  if (url.query !== undefined) target += '?' + renderQuery(url.query, coin)
  const headers: Record<string, string | string[]> = {}
  route.route.vary.forEach((name, i) => {
    const value = url.vary[i]
    if (value === undefined) return
    // Node joins repeated lines with ', ': a split value is the same header.
    headers[name] = value.includes(', ') && coin() ? value.split(', ') : value
  })
  return { url: target, headers }
}

/** The README's normal form of a request on `route`; 'bypass' when the route must not cache it. */
export function normalForm (url: LogicalUrl, route: KeyedRoute, rendered: FakeRequest): string {
  const rawQuery = rendered.url.includes('?') ? rendered.url.slice(rendered.url.indexOf('?') + 1) : ''
  if (route.route.queryString === undefined && rawQuery !== '') return 'bypass'
  const path = url.segments.map((tokens) => tokens.map((token) => {
    if ('lit' in token) return token.lit
    const char = String.fromCharCode(token.pct)
    return UNRESERVED.test(char) ? char : '%' + HEX(token.pct).toUpperCase()
  }).join(''))
  let pairs: Array<[string, string]> = route.route.queryString === undefined ? [] : [...(url.query ?? [])]
  const keyed = route.route.queryString
  if (keyed instanceof Set) pairs = pairs.filter(([name]) => keyed.has(name))
  // Stable, by UTF-16 code units, as URLSearchParams#sort (and the README: "sorted by name").
  pairs = pairs.map((pair, i) => ({ pair, i })).sort((a, b) => a.pair[0] < b.pair[0] ? -1 : a.pair[0] > b.pair[0] ? 1 : a.i - b.i)
    .map(({ pair }) => pair)
  const vary = route.route.vary.map((_name, i) => url.vary[i] ?? null)
  return JSON.stringify([path, pairs, vary])
}

// Small alphabets, so that near collisions are common.
const pathChar = fc.constantFrom('a', 'b', 'A', '0', '~', '-', '.', '_', '!', '$', '&', "'", '(', ')', '*', '+', ',', ';', '=', ':', '@', 'é', '中')
const pathByte = fc.constantFrom(0x00, 0x20, 0x25, 0x2b, 0x2f, 0x3f, 0x41, 0x61, 0x7e, 0x2e, 0xc3, 0xa9, 0xff, 0x26)
const token: fc.Arbitrary<Token> = fc.oneof(pathChar.map((lit) => ({ lit })), pathByte.map((pct) => ({ pct })))
const segment = fc.oneof(
  { weight: 5, arbitrary: fc.array(token, { maxLength: 5 }) },
  // Long enough to be hashed (keys over MAX_KEY_BYTES keep a head and end in a SHA-256).
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 60, max: 400 }), fc.array(token, { maxLength: 3 })).map(([length, tail]) => [...Array.from({ length }, () => ({ lit: 'a' })), ...tail]) }
)
const text = fc.oneof(
  fc.constantFrom('', 'page', 'a', 'b', 'A', 'a b', 'a+b', 'é', '1', '2', '&', '=', '%', '%41', '\u0000', '中', ' page'),
  fc.string({ unit: 'binary', maxLength: 4 })
)
const pair = fc.tuple(fc.oneof(fc.constantFrom('page', 'page', 'a', 'b'), text), text)
const headerText = fc.oneof(
  // As Node hands them over: no CR, LF or NUL, no surrounding whitespace.
  fc.constantFrom('', 'en', 'fr', 'en, fr', 'en,fr', 'en;q=1', 'EN', 'a, ', '=', '-'),
  fc.string({ unit: fc.integer({ min: 0x20, max: 0xff }).map((code) => String.fromCharCode(code)), maxLength: 6 })
)
const logicalUrl: fc.Arbitrary<LogicalUrl> = fc.record({
  segments: fc.array(segment, { minLength: 1, maxLength: 4 }),
  query: fc.option(fc.array(pair, { maxLength: 5 }), { nil: undefined }),
  vary: fc.array(fc.option(headerText, { nil: undefined }), { minLength: 2, maxLength: 2 })
})

/** A near miss of `url`: one token, pair or header changed, added, dropped or swapped. */
function mutate (url: LogicalUrl, pick: number, replacement: Token, extra: [string, string], header: string | undefined): LogicalUrl {
  const copy: LogicalUrl = structuredClone(url)
  const kind = pick % 6
  const segment = copy.segments[pick % copy.segments.length] as Token[]
  if (kind === 0 && segment.length > 0) segment[pick % segment.length] = replacement
  else if (kind === 1) segment.push(replacement)
  else if (kind === 2 && copy.query !== undefined && copy.query.length >= 2) {
    const [first, second] = copy.query as [[string, string], [string, string]]
    copy.query[0] = second
    copy.query[1] = first
  } else if (kind === 3) copy.query = [...(copy.query ?? []), extra]
  else if (kind === 4 && copy.query !== undefined && copy.query.length > 0) copy.query.splice(pick % copy.query.length, 1)
  else copy.vary[pick % 2] = header
  return copy
}

const pairOfUrls: fc.Arbitrary<[LogicalUrl, LogicalUrl]> = fc.oneof(
  logicalUrl.map((url): [LogicalUrl, LogicalUrl] => [url, url]),
  fc.tuple(logicalUrl, logicalUrl),
  fc.tuple(logicalUrl, fc.nat(), token, pair, fc.option(headerText, { nil: undefined }))
    .map(([url, pick, replacement, extra, header]): [LogicalUrl, LogicalUrl] => [url, mutate(url, pick, replacement, extra, header)])
)

/** The key function under test, as the plugin computes it. */
export type KeyFunction = (request: FastifyRequest, route: NormalizedRouteOptions, prefix: string) => { storeKey: string, variant: string } | null

function keyOf (request: FakeRequest, route: KeyedRoute, keyFunction: KeyFunction = requestKey): string | null {
  const key = keyFunction(request as unknown as FastifyRequest, route.route, PREFIX)
  if (key === null) return null
  if (Buffer.byteLength(key.storeKey) > MAX_KEY_BYTES) throw new Error(`a store key of ${Buffer.byteLength(key.storeKey)} bytes`)
  return `${key.storeKey}\n${key.variant}`
}

/** (a): keys are equal exactly when normal forms are; bypassed requests get no key. */
export function urlPropertyOf (keyFunction: KeyFunction): fc.IPropertyWithHooks<[number, [LogicalUrl, LogicalUrl], number, number]> {
  return fc.property(
    fc.integer({ min: 0, max: KEYED_ROUTES.length - 1 }), pairOfUrls, fc.nat(), fc.nat(),
    (routeIndex, [a, b], spellingA, spellingB) => {
      const route = KEYED_ROUTES[routeIndex] as KeyedRoute
      const ra = render(a, route, spellingA)
      const rb = render(b, route, spellingB)
      const na = normalForm(a, route, ra)
      const nb = normalForm(b, route, rb)
      const ka = keyOf(ra, route, keyFunction)
      const kb = keyOf(rb, route, keyFunction)
      if (na === 'bypass' || nb === 'bypass') return (na !== 'bypass' || ka === null) && (nb !== 'bypass' || kb === null)
      if (ka === null || kb === null) return false
      return (ka === kb) === (na === nb)
    }
  )
}

export const urlProperty = urlPropertyOf(requestKey)

// (b) Raw query strings from pieces that decode differently depending on the parser.
const queryPiece = fc.constantFrom(
  'a', 'b', 'page', '=', '&', '1', '2', '+', ' ', '%20', '%2B', '%26', '%3D', '%41', 'A', '%', '%2', '%zz', '%00',
  '%C0', '%AF', '%C3%A9', 'é', '%E2%82', '%E2%82%AC', '%EF%BF%BD', '%ED%A0%80', '%FF', '[]', '%5B%5D', '?'
)
const rawQuery = fc.array(queryPiece, { minLength: 1, maxLength: 8 }).map((pieces) => pieces.join(''))

/** A Fastify app whose handler reports what it was handed and where the plugin would keep its response. */
export async function parserProbe (): Promise<FastifyInstance> {
  const app = Fastify()
  const routes: Array<[string, KeyedRoute]> = [['/all', KEYED_ROUTES[1] as KeyedRoute], ['/page', KEYED_ROUTES[2] as KeyedRoute]]
  for (const [path, route] of routes) {
    app.get(path, async (request) => {
      const query = request.query as Record<string, unknown>
      const seen = route.route.queryString === 'all'
        ? Object.keys(query).sort().map((name) => [name, query[name]])
        : query.page ?? null
      return { seen: JSON.stringify(seen), key: keyOf(request as unknown as FakeRequest, route) }
    })
  }
  await app.ready()
  return app
}

/**
 * Pairs of raw queries: independent ones, and "twins" (a query and its re-serialised form, which a key built on
 * URLSearchParams calls equal, so the handler must see them as equal too).
 */
const queryPair: fc.Arbitrary<[string, string]> = fc.oneof(
  fc.tuple(rawQuery, rawQuery),
  rawQuery.map((query): [string, string] => [query, new URLSearchParams(query).toString()])
)

export function parserProperty (app: FastifyInstance): fc.IAsyncPropertyWithHooks<[string, [string, string]]> {
  return fc.asyncProperty(fc.constantFrom('/all', '/page'), queryPair, async (path, [qa, qb]) => {
    const [a, b] = await Promise.all([qa, qb].map(async (query) => (await app.inject(`${path}?${query}`)).json() as { seen: string, key: string | null }))
    if (a === undefined || b === undefined) return false
    // A different page for the handler must be a different entry in the cache.
    return a.seen === b.seen || a.key !== b.key
  })
}
