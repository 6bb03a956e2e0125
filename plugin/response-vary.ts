import type { FastifyRequest } from 'fastify'
import { digest } from './keyspace.js'

/**
 * RFC 9111 §4.1: a stored response is served only to a request whose headers named in the response's `Vary` match
 * those of the request that made it. The route's `vary` option keys the lookup before the handler runs; the response's
 * own `Vary` is known only after, so the entry records what it was made for, and a request it does not fit looks in a
 * second variant named after its own values.
 */

/** The request headers a response varies on, with the values of the request that made it (null: absent). */
export type VaryOn = ReadonlyArray<readonly [name: string, value: string | null]>

/** At most this many names in a response's Vary: more is no longer a variant, it is a fingerprint. */
export const MAX_VARY_NAMES = 16

/** `Vary` header names, lowercased, unique, sorted; `*` stays as it is. */
export function varyNames (header: unknown): string[] {
  if (header === undefined || header === null) return []
  const text = Array.isArray(header) ? header.join(',') : String(header)
  const names = new Set<string>()
  for (const part of text.split(',')) {
    const name = part.trim().toLowerCase()
    if (name !== '') names.add(name)
  }
  return [...names].sort()
}

/**
 * The names a response varies on that the cache must key: those of its final `Vary`, less those already there when the
 * cache looked (another plugin's, for headers it sets afresh on every request, as CORS does for `Origin`) and less
 * `accept-encoding`, which the cache serves itself.
 */
export function routeVaryNames (final: unknown, atLookup: unknown): string[] {
  const before = new Set(varyNames(atLookup))
  return varyNames(final).filter((name) => !before.has(name) && name !== 'accept-encoding')
}

function requestValue (request: FastifyRequest, name: string): string | null {
  const value = request.headers[name]
  if (value === undefined) return null
  return Array.isArray(value) ? value.join(', ') : value
}

/** What `request` sends for each of `names`. */
export function varyOnOf (names: readonly string[], request: FastifyRequest): VaryOn {
  return names.map((name) => [name, requestValue(request, name)] as const)
}

/** Whether an entry made for `varyOn` may be served to `request`. */
export function fits (varyOn: VaryOn | undefined, request: FastifyRequest): boolean {
  if (varyOn === undefined) return true
  for (const [name, value] of varyOn) {
    if (requestValue(request, name) !== value) return false
  }
  return true
}

/** The variant holding the response for `request`'s values of `varyOn`'s names, beside the base `variant`. */
export function varyVariant (variant: string, varyOn: VaryOn, request: FastifyRequest): string {
  let material = 'vary\n' + variant
  for (const [name] of varyOn) {
    const value = requestValue(request, name)
    material += '\n' + name + (value === null ? '-' : '=' + value)
  }
  return digest(material)
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9a-z-]+$/
const FIELD_VALUE = /^[\t\u0020-\u007e\u0080-\u00ff]*$/

/** A stored `varyOn`, distrusted like every other field. */
export function isVaryOn (value: unknown): value is VaryOn {
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_VARY_NAMES) return false
  return value.every((pair: unknown) => Array.isArray(pair) && pair.length === 2 &&
    typeof pair[0] === 'string' && TOKEN.test(pair[0]) &&
    (pair[1] === null || (typeof pair[1] === 'string' && FIELD_VALUE.test(pair[1]))))
}
