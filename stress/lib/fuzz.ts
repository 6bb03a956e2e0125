// Random requests for the cached routes of lib/app-routes.ts: long paths, percent-encoding (valid, invalid, over-long
// UTF-8, NUL), unicode, dot segments, repeated and array query parameters, huge query strings, and random values of
// the `vary` header. Request targets are printable ASCII, as on the wire; header values may carry latin-1 bytes.
import fc from 'fast-check'

export interface FuzzRequest {
  method: 'GET' | 'HEAD'
  /** The request target as sent: path and query. */
  target: string
  headers: Array<[string, string]>
}

const pctByte = fc.tuple(fc.integer({ min: 0, max: 255 }), fc.boolean()).map(([byte, upper]) => {
  const hex = byte.toString(16).padStart(2, '0')
  return '%' + (upper ? hex.toUpperCase() : hex)
})
const unicodeText = fc.string({ unit: 'grapheme', maxLength: 8 }).map((text) => encodeURIComponent(text))
const latin1Text = fc.string({ unit: fc.integer({ min: 0x80, max: 0xff }).map((code) => String.fromCharCode(code)), maxLength: 6 })
  .map((text) => encodeURIComponent(text))
const safeChars = "abcXYZ019-._~!$&'()*+,;=:@"
const asciiSafe = fc.string({ unit: fc.constantFrom(...safeChars.split('')), maxLength: 10 })
const tricky = fc.constantFrom(
  '%', '%z', '%4', '%%', '%zz', '%G0', '%C0%AF', '%E2%82', '%ED%A0%80', '%F4%90%80%80', '%00', '%2F', '%2f', '%252F',
  '%EF%BF%BD', '%EF%BF%BD%EF%BF%BD', '%41', '%7E', '%7e', '%2e', '%2E%2E', '..', '.', '%23', '%3F', '%3f', '+', '%20', '%2B'
)
const piece = fc.oneof(asciiSafe, unicodeText, latin1Text, pctByte, tricky)
const segment = fc.array(piece, { maxLength: 6 }).map((pieces) => pieces.join(''))
const longSegment = fc.tuple(fc.constantFrom('a', '%41', '%E2%82%AC', '%00', 'b%2F', '~'), fc.integer({ min: 50, max: 11_000 }))
  .map(([unit, length]) => unit.repeat(Math.max(1, Math.floor(length / unit.length))))

const paramName = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('page', 'a', 'b', 'page[]', 'a[]', 'a[0]', '__proto__', 'constructor', 'PAGE', '', 'page%5B%5D', 'p%61ge') },
  { weight: 1, arbitrary: segment }
)
const paramValue = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('1', '2', '0', '-1', '1e3', '', 'true', 'null', '%00', '1%00', '%C0%AF', '%EF%BF%BD') },
  { weight: 2, arbitrary: segment },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 8_000 }).map((length) => 'v'.repeat(length)) }
)
const pair = fc.tuple(paramName, fc.option(paramValue, { nil: undefined })).map(([name, value]) => value === undefined ? name : `${name}=${value}`)
const pairs = fc.array(pair, { minLength: 1, maxLength: 12 }).map((list) => list.join('&'))
const query = fc.oneof(
  { weight: 6, arbitrary: pairs },
  // A second '?': Fastify reads it as part of the first name, URLSearchParams drops it.
  { weight: 1, arbitrary: pairs.map((text) => `?${text}`) },
  // Repeated parameters, up to ~20 KB (past Node's 16 KB header limit now and then).
  { weight: 1, arbitrary: fc.tuple(pair, fc.integer({ min: 10, max: 900 })).map(([one, times]) => Array(Math.max(1, Math.min(times, Math.floor(20_000 / (one.length + 1))))).fill(one).join('&')) },
  { weight: 1, arbitrary: fc.constantFrom('', '&', '&&', '=', '==', '?', 'page', 'page=', 'page=1&page=2', 'page=2&page=1', 'a;b', '#frag') }
)

const headerValue = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('en', 'fr-CH, fr;q=0.9, en;q=0.8', '*', '', 'de', 'EN', 'en ', 'x'.repeat(64)) },
  { weight: 2, arbitrary: fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code)), maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: fc.integer({ min: 0x80, max: 0xff }).map((code) => String.fromCharCode(code)), maxLength: 10 }) },
  { weight: 1, arbitrary: fc.integer({ min: 100, max: 6_000 }).map((length) => 'l'.repeat(length)) }
).map((value) => value.trim())

const route = fc.oneof(
  { weight: 4, arbitrary: fc.oneof(segment, longSegment).map((id) => `/item/${id}`) },
  { weight: 3, arbitrary: fc.constant('/q') },
  { weight: 3, arbitrary: fc.constant('/page') },
  { weight: 3, arbitrary: fc.constant('/lang') },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('/q', '/page', '/lang', '/item', '/'), segment).map(([head, tail]) => `${head}/${tail}`) },
  { weight: 1, arbitrary: fc.array(segment, { maxLength: 4 }).map((segments) => '/' + segments.join('/')) }
)

export const fuzzRequest: fc.Arbitrary<FuzzRequest> = fc.record({
  method: fc.oneof({ weight: 19, arbitrary: fc.constant('GET' as const) }, { weight: 1, arbitrary: fc.constant('HEAD' as const) }),
  path: route,
  query: fc.option(query, { nil: undefined, freq: 2 }),
  language: fc.option(fc.array(headerValue, { minLength: 1, maxLength: 3 }), { nil: undefined, freq: 3 }),
  extra: fc.subarray([
    ['x-forwarded-host', 'evil.example'], ['x-original-url', '/item/other'], ['if-none-match', '*'],
    ['authorization', 'Bearer x'], ['cache-control', 'no-cache'], ['accept', 'application/json']
  ] as Array<[string, string]>, { maxLength: 2 })
}).map(({ method, path, query, language, extra }) => {
  const headers: Array<[string, string]> = [...extra]
  for (const value of language ?? []) headers.push(['accept-language', value])
  return { method, target: query === undefined ? path : `${path}?${query}`, headers }
})

/** `count` requests, the same for the same seed. */
export function fuzzRequests (count: number, seed: number): FuzzRequest[] {
  const requests: FuzzRequest[] = []
  for (let batch = 0; requests.length < count; batch++) {
    requests.push(...fc.sample(fuzzRequest, { numRuns: Math.min(500, count - requests.length), seed: seed + batch }))
  }
  return requests
}
