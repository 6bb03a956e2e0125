import { FST_CACHE_TIMEOUT, storeError } from './errors.js'

/**
 * Calls `onLate` once `ms` have passed and the event loop has since polled for I/O (a setImmediate after the timer),
 * so that an answer which reached the socket while the process was busy, e.g. rendering other requests, is read
 * first: a busy event loop is not mistaken for a slow store. Returns a function that cancels it.
 */
export function afterBudget (ms: number, onLate: () => void): () => void {
  let immediate: NodeJS.Immediate | undefined
  const timer = setTimeout(() => { immediate = setImmediate(onLate) }, ms)
  return () => {
    clearTimeout(timer)
    if (immediate !== undefined) clearImmediate(immediate)
  }
}

/**
 * Rejects with FST_CACHE_TIMEOUT when `promise` takes longer than `ms`. Judged after the event loop has read the I/O
 * that arrived meanwhile (`afterBudget`), so an answer held up only by a busy process is not a timeout.
 */
export function withTimeout<T> (promise: Promise<T>, ms: number, operation: string): Promise<T> {
  // One promise settled by whichever comes first: every lookup pays this, so no race of two promises.
  return new Promise((resolve, reject) => {
    const cancel = afterBudget(ms, () => reject(new FST_CACHE_TIMEOUT(operation, ms)))
    promise.then((value) => { cancel(); resolve(value) }, (err: unknown) => { cancel(); reject(err) })
  })
}

/** Wraps a store call so that direct API calls reject with a coded error (FST_CACHE_TIMEOUT past `timeoutMs`). */
export async function coded<T> (operation: string, promise: Promise<T>, timeoutMs?: number): Promise<T> {
  try {
    return await (timeoutMs === undefined ? promise : withTimeout(promise, timeoutMs, operation))
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code
    if (typeof code === 'string' && code.startsWith('FST_CACHE_')) throw err
    throw storeError(operation, err)
  }
}
