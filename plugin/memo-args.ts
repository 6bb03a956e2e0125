import { types } from 'node:util'
import { FST_CACHE_INVALID_KEY } from './errors.js'

/**
 * The key of a memoized call's argument list: two lists get the same key exactly when they are equal, where
 * - primitives are equal under `Object.is` (so `undefined` ≠ `null`, `NaN` = `NaN`, `-0` ≠ `0`, `1n` ≠ `1`);
 * - arrays (their elements) and plain objects (prototype `Object.prototype` or null; their own enumerable string
 *   keys) compare structurally, objects whatever their key order; a hole is not `undefined`;
 * - a Date compares by its time, a Buffer or typed array by its type and bytes;
 * - a Map or Set compares by its entries, whatever their order.
 * Anything else (a function, a symbol, a class instance, a cycle, a symbol-keyed object) cannot be compared faithfully,
 * and is refused with FST_CACHE_INVALID_KEY naming the argument.
 *
 * The key reads like JavaScript (`[1,undefined,"a",Date(0)]`) and parses back unambiguously: every string in it is
 * JSON-quoted, which also escapes lone surrogates, so its UTF-8 bytes (what gets hashed) are distinct too.
 */
export function memoArgsKey (args: readonly unknown[]): string {
  return new ArgsEncoder().array(args)
}

/** The built-in binary views, keyed by their type and bytes. */
const BINARY_TYPES = new Map<object, string>([
  Buffer, Uint8Array, Uint8ClampedArray, Int8Array, Uint16Array, Int16Array, Uint32Array, Int32Array, Float32Array,
  Float64Array, BigInt64Array, BigUint64Array
].map((type) => [type.prototype, type.name]))

class ArgsEncoder {
  /** Where the value being encoded sits, for error messages: `args[1].user.tags[0]`. */
  readonly #path: string[] = ['args']
  /** The objects being encoded around the current value: meeting one again is a cycle. */
  readonly #ancestors = new Set<object>()

  value (value: unknown): string {
    switch (typeof value) {
      case 'undefined': return 'undefined'
      case 'boolean': return value ? 'true' : 'false'
      case 'number': return Object.is(value, -0) ? '-0' : String(value)
      case 'bigint': return `${value}n`
      case 'string': return JSON.stringify(value)
      case 'object': return value === null ? 'null' : this.#object(value)
      default: throw this.#refuse(`is a ${typeof value}`)
    }
  }

  array (array: readonly unknown[]): string {
    const items: string[] = []
    for (let index = 0; index < array.length; index++) {
      this.#path.push(`[${index}]`)
      items.push(index in array ? this.value(array[index]) : 'hole')
      this.#path.pop()
    }
    return `[${items.join(',')}]`
  }

  #object (object: object): string {
    if (this.#ancestors.has(object)) throw this.#refuse('refers back to an object that contains it (a cycle)')
    this.#ancestors.add(object)
    const key = this.#objectOfKnownType(object)
    this.#ancestors.delete(object)
    return key
  }

  #objectOfKnownType (object: object): string {
    // The exact built-in prototype, and the built-in's own brand: a subclass or a look-alike may hold state of its own.
    const prototype: unknown = Object.getPrototypeOf(object)
    if (prototype === Object.prototype || prototype === null) return this.#plain(object as Record<string, unknown>)
    if (prototype === Array.prototype && Array.isArray(object)) return this.array(object)
    if (prototype === Date.prototype && types.isDate(object)) return `Date(${object.getTime()})`
    if (prototype === Map.prototype && types.isMap(object)) return this.#map(object)
    if (prototype === Set.prototype && types.isSet(object)) return `Set[${this.#each([...object], 'set element').sort().join(',')}]`
    const binaryType = BINARY_TYPES.get(prototype as object)
    if (binaryType !== undefined && ArrayBuffer.isView(object)) {
      return `${binaryType}<${Buffer.from(object.buffer, object.byteOffset, object.byteLength).toString('base64')}>`
    }
    const kind = (prototype as { constructor?: { name?: unknown } }).constructor?.name
    throw this.#refuse(`is an instance of ${typeof kind === 'string' && kind !== '' ? kind : 'a class'}, which has no ` +
      'equality to key it by (supported: plain objects, arrays, Date, Map, Set, Buffer and typed arrays)')
  }

  #plain (object: Record<string, unknown>): string {
    if (Object.getOwnPropertySymbols(object).some((symbol) => Object.prototype.propertyIsEnumerable.call(object, symbol))) {
      throw this.#refuse('has symbol keys')
    }
    const entries = Object.keys(object).sort().map((key) => {
      this.#path.push(/^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`)
      const entry = `${JSON.stringify(key)}:${this.value(object[key])}`
      this.#path.pop()
      return entry
    })
    return `{${entries.join(',')}}`
  }

  #map (map: ReadonlyMap<unknown, unknown>): string {
    const keys = this.#each([...map.keys()], 'map key')
    const values = this.#each([...map.values()], 'map value')
    return `Map{${keys.map((key, index) => `${key}:${values[index] as string}`).sort().join(',')}}`
  }

  /** Encodes the members of a Map or Set, whose positions are not part of their equality but name them in errors. */
  #each (members: unknown[], role: string): string[] {
    return members.map((member, index) => {
      this.#path.push(` (${role} #${index})`)
      const key = this.value(member)
      this.#path.pop()
      return key
    })
  }

  #refuse (reason: string): Error {
    return new FST_CACHE_INVALID_KEY(`memoize cannot key its arguments: ${this.#path.join('')} ${reason}`)
  }
}
