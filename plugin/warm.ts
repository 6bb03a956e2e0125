import type { FastifyReply, FastifyRequest } from 'fastify'
import { invalidOption } from './errors.js'
import { REFRESH_HEADER } from './refresh.js'
import { withTimeout } from './timeout.js'

/**
 * Asks the cache to say whether it stored a warming request's response, and carries the answer back. Only a request
 * carrying the process's token is answered, so a client can neither ask nor see it; the answer is set after the entry
 * is framed, so it is never stored.
 */
export const WARM_HEADER = 'x-fastify-cache-warm'
export const DEFAULT_WARM_CONCURRENCY = 4

export interface WarmOptions {
  /** Pages rendered at once. Default 4. */
  concurrency?: number
}

export interface WarmResult {
  /** Pages the cache stored. */
  stored: number
  /** Every other path, with why: a status outside 2xx, not stored (bypassed, not cached, refused), or an error. */
  failed: Array<{ path: string, error: string }>
}

/** A GET through the app, as `fastify.inject` makes it. */
export type WarmInject = (request: { method: 'GET', url: string, headers: Record<string, string> }) =>
Promise<{ statusCode: number, headers: Record<string, unknown> }>

/** Whether this request is a warming of this process, whose response should say whether it was stored. */
export function isWarming (request: FastifyRequest, engine: { refreshToken: string }): boolean {
  return request.headers[WARM_HEADER] === engine.refreshToken
}

/**
 * Answers a warming request: whether the store took its page (a purge since, or a sick store, refuse it). A store
 * that does not answer within `timeoutMs` counts as a refusal, so that a warming never hangs on it.
 */
export async function reportWarmed (reply: FastifyReply, written: Promise<boolean>, timeoutMs: number): Promise<void> {
  const stored = await withTimeout(written, timeoutMs, 'warm').catch(() => false)
  reply.header(WARM_HEADER, stored ? 'stored' : 'refused')
}

function checkPaths (paths: unknown): readonly string[] {
  if (!Array.isArray(paths)) throw invalidOption('warm paths', 'expected an array of paths')
  for (const path of paths) {
    // A path, never a URL: '//host/x' would name another host.
    if (typeof path !== 'string' || !path.startsWith('/') || path.startsWith('//')) {
      throw invalidOption('warm paths', `expected paths starting with '/', got ${typeof path === 'string' ? JSON.stringify(path) : typeof path}`)
    }
  }
  return paths
}

function checkConcurrency (options: unknown): number {
  if (options === undefined) return DEFAULT_WARM_CONCURRENCY
  if (typeof options !== 'object' || options === null) throw invalidOption('warm options', 'expected { concurrency }')
  const concurrency = (options as WarmOptions).concurrency ?? DEFAULT_WARM_CONCURRENCY
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw invalidOption('warm concurrency', `expected a positive integer, got ${String(concurrency)}`)
  }
  return concurrency
}

/** Renders one page; undefined when it was stored, otherwise why not. */
async function warmOne (inject: WarmInject, token: string, path: string): Promise<string | undefined> {
  try {
    // The refresh header renders the page even when a fresh copy is stored (Varnish's `hash_always_miss`).
    const response = await inject({ method: 'GET', url: path, headers: { [REFRESH_HEADER]: token, [WARM_HEADER]: token } })
    if (response.statusCode < 200 || response.statusCode > 299) return `status ${response.statusCode}`
    const answer = response.headers[WARM_HEADER]
    if (answer === 'stored') return undefined
    return answer === 'refused' ? 'not stored: the store refused it or did not answer' : 'not stored: bypassed, or not a cached route'
  } catch (err) {
    return err instanceof Error ? err.message : String(err)
  }
}

/**
 * Renders `paths` through the app, `concurrency` at a time, each forced past what is stored, and reports what the
 * cache stored. Resolves once every page is written or refused; never rejects for a page, only for bad arguments.
 */
export async function warmPages (inject: WarmInject, token: string, paths: unknown, options?: unknown): Promise<WarmResult> {
  const checked = checkPaths(paths)
  const concurrency = checkConcurrency(options)
  const errors: Array<string | undefined> = new Array(checked.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < checked.length) {
      const index = next++
      errors[index] = await warmOne(inject, token, checked[index] as string)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, checked.length) }, worker))
  const failed: WarmResult['failed'] = []
  errors.forEach((error, index) => { if (error !== undefined) failed.push({ path: checked[index] as string, error }) })
  return { stored: checked.length - failed.length, failed }
}
