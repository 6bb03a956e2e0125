/**
 * A response's own freshness lifetime, read off its `cache-control` (RFC 9111 §4.2.1, §5.2.2) for `ttl: 'origin'`:
 * `s-maxage`, then `max-age`, less the response's `age`. Parsed as RFC 9110 §5.6 lists it, not by pattern matching,
 * so that `max-age` inside another directive's quoted value is not read as one.
 */

/** RFC 9110's `tchar`: what a directive name, or an unquoted value, is made of. */
const TOKEN_CHAR = /[!#$%&'*+.^_`|~0-9A-Za-z-]/
const DELTA_SECONDS = /^[0-9]+$/
/** RFC 9111 §1.2.2: a larger delta-seconds is taken as 2^31. */
const MAX_DELTA_SECONDS = 2 ** 31

interface Directive {
  name: string
  value: string | undefined
}

/** A run of token characters from `at`, possibly empty. */
function tokenAt (text: string, at: number): string {
  let end = at
  while (end < text.length && TOKEN_CHAR.test(text.charAt(end))) end++
  return text.slice(at, end)
}

/** A quoted-string whose opening quote is at `at`: its unescaped content and where it ends, or null if unterminated. */
function quotedAt (text: string, at: number): { value: string, end: number } | null {
  let value = ''
  for (let i = at + 1; i < text.length; i++) {
    const char = text.charAt(i)
    if (char === '"') return { value, end: i + 1 }
    if (char === '\\') i++
    value += text.charAt(i)
  }
  return null
}

function skipSpace (text: string, at: number): number {
  while (text.charAt(at) === ' ' || text.charAt(at) === '\t') at++
  return at
}

/**
 * The directives of a `cache-control` value, names lowercased, in order; null when the value is not a list of
 * `token [ "=" ( token / quoted-string ) ]` (whitespace around `=` is tolerated, as most caches do).
 */
export function parseCacheControl (text: string): Directive[] | null {
  const directives: Directive[] = []
  let at = 0
  while (at < text.length) {
    at = skipSpace(text, at)
    if (text.charAt(at) === ',') { at++; continue } // empty list members are allowed (RFC 9110 §5.6.1)
    const name = tokenAt(text, at)
    if (name === '') return null
    at = skipSpace(text, at + name.length)
    let value: string | undefined
    if (text.charAt(at) === '=') {
      at = skipSpace(text, at + 1)
      if (text.charAt(at) === '"') {
        const quoted = quotedAt(text, at)
        if (quoted === null) return null
        value = quoted.value
        at = quoted.end
      } else {
        value = tokenAt(text, at)
        at += value.length
      }
      at = skipSpace(text, at)
    }
    if (at < text.length && text.charAt(at) !== ',') return null
    directives.push({ name: name.toLowerCase(), value })
  }
  return directives
}

/** Seconds of a delta-seconds value, or undefined when it is not one. */
function deltaSeconds (value: string | undefined): number | undefined {
  if (value === undefined || !DELTA_SECONDS.test(value)) return undefined
  return Math.min(Number(value), MAX_DELTA_SECONDS)
}

/** RFC 9111 §5.1: the first member of `age`; an invalid one is ignored (0). */
function ageSeconds (age: unknown): number {
  if (age === undefined) return 0
  const first = String(Array.isArray(age) ? age[0] : age).split(',')[0]?.trim()
  return deltaSeconds(first) ?? 0
}

/**
 * Milliseconds the response says it stays fresh in a shared cache: `s-maxage` if present, else `max-age`, less its
 * `age`. Undefined when it says neither. 0 (stale: not to be stored) when the header cannot be parsed, or the
 * directive that applies has an invalid value or appears twice with different values: RFC 9111 §4.2.1 allows taking
 * the first, or treating the response as stale, and encourages the latter for invalid freshness information.
 */
export function originFreshMs (cacheControl: unknown, age: unknown): number | undefined {
  if (cacheControl === undefined) return undefined
  const directives = parseCacheControl(Array.isArray(cacheControl) ? cacheControl.join(',') : String(cacheControl))
  if (directives === null) return 0
  for (const name of ['s-maxage', 'max-age']) {
    const values = directives.filter((directive) => directive.name === name).map((directive) => deltaSeconds(directive.value))
    if (values.length === 0) continue
    const seconds = values[0]
    if (seconds === undefined || values.some((other) => other !== seconds)) return 0
    return Math.max(0, seconds - ageSeconds(age)) * 1000
  }
  return undefined
}
