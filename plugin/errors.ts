import createError, { type FastifyErrorConstructor } from '@fastify/error'

// Every error the plugin throws or rejects with carries one of these stable codes, and the original error as `cause`.

// Spelled out with @fastify/error's named type: inferred, the published .d.ts would name it through the default
// import (`createError.FastifyErrorConstructor`), which a consumer compiling to CommonJS without esModuleInterop
// cannot resolve (TS2503).
type CodedErrorConstructor<Args extends unknown[]> = FastifyErrorConstructor<{ code: string }, Args>

export const FST_CACHE_INVALID_OPTION: CodedErrorConstructor<[string, string]> = createError<[string, string]>(
  'FST_CACHE_INVALID_OPTION', 'fastify-cache: invalid option "%s": %s', 500, TypeError)

export const FST_CACHE_INVALID_KEY: CodedErrorConstructor<[string]> = createError<[string]>(
  'FST_CACHE_INVALID_KEY', 'fastify-cache: invalid key: %s', 500, TypeError)

export const FST_CACHE_INVALID_VALUE: CodedErrorConstructor<[string, string]> = createError<[string, string]>(
  'FST_CACHE_INVALID_VALUE', 'fastify-cache: the value for key "%s" cannot be stored: %s', 500, TypeError)

type StoreErrorArgs = [operation: string, message: string, options?: { cause: unknown }]
export const FST_CACHE_STORE_ERROR: CodedErrorConstructor<StoreErrorArgs> = createError<StoreErrorArgs>(
  'FST_CACHE_STORE_ERROR', 'fastify-cache: store %s failed: %s')

export const FST_CACHE_TIMEOUT: CodedErrorConstructor<[string, number]> = createError<[string, number]>(
  'FST_CACHE_TIMEOUT', 'fastify-cache: store %s took longer than %dms')

export const FST_CACHE_CORRUPT_ENTRY: CodedErrorConstructor<[string]> = createError<[string]>(
  'FST_CACHE_CORRUPT_ENTRY', 'fastify-cache: stored bytes are not a fastify-cache entry: %s')

export interface InvalidOptionError extends Error {
  code: 'FST_CACHE_INVALID_OPTION'
  /** The option path, e.g. `defaultTtl` or `config.cache.ttl (GET /about)`. */
  option: string
}

export function invalidOption (option: string, detail: string): InvalidOptionError {
  const err = new FST_CACHE_INVALID_OPTION(option, detail) as unknown as InvalidOptionError
  err.option = option
  return err
}

export function storeError (operation: string, cause: unknown): Error {
  const message = cause instanceof Error ? cause.message : String(cause)
  return new FST_CACHE_STORE_ERROR(operation, message, { cause })
}
