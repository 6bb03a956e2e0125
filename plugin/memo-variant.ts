import { randomBytes } from 'node:crypto'
import { FST_CACHE_INVALID_KEY } from './errors.js'
import { digest } from './keyspace.js'
import { memoArgsKey } from './memo-args.js'
import { isInternalField } from './stores/store.js'

// A memoized function's results are the variants of one key (`memoize/<name>`). A call's variant is the digest of its
// arguments; a call on an object (a method: `this` is not nullish) is prefixed with that object's id, so each
// instance keeps its own entries, like Flask-Caching's per-instance `self` key.

// Object identity means nothing outside this process: the random part keeps the ids of another process, or of an
// earlier run, that share the store from ever naming this process's objects. Their entries just expire.
const PROCESS_ID = randomBytes(9).toString('base64url')
// A WeakMap, so that a collected object's id goes with it; ids are never reused, so its entries are never read again.
const objectIds = new WeakMap<object, string>()
let lastObjectId = 0

/** The variant holding the result of `fn.apply(receiver, args)`: `<args digest>`, or `<object id>.<args digest>`. */
export function memoVariant (receiver: unknown, args: readonly unknown[]): string {
  const argsDigest = digest(memoArgsKey(args))
  return receiver === undefined || receiver === null ? argsDigest : `${objectId(receiver)}.${argsDigest}`
}

/** Whether a stored variant holds a call with the arguments whose bare variant is `argsVariant`, on any receiver. */
export function isVariantOfArgs (variant: string, argsVariant: string): boolean {
  return variant === argsVariant || (variant.endsWith('.' + argsVariant) && !isInternalField(variant))
}

function objectId (receiver: unknown): string {
  if (typeof receiver !== 'object' && typeof receiver !== 'function') {
    throw new FST_CACHE_INVALID_KEY(`memoize: a memoized method keys its entries by object, and was called on a ${typeof receiver}`)
  }
  let id = objectIds.get(receiver as object)
  if (id === undefined) {
    // PROCESS_ID has a fixed length, so the counter after it cannot make two ids alike; base64url has no '.'.
    id = PROCESS_ID + (++lastObjectId).toString(36)
    objectIds.set(receiver as object, id)
  }
  return id
}
