import { setTimeout as delay } from 'node:timers/promises'
import { invalidOption } from './errors.js'
import type { PurgeContext, PurgeEvent } from './purge-reporter.js'

export interface HttpPurgerOptions {
  /** Where purges go, e.g. Varnish's `http://127.0.0.1:6081/`. */
  url: string | URL
  /** Default `'PURGE'`. */
  method?: string
  /** The request header that carries the tokens, space-separated. Default `'xkey'` (Varnish's xkey vmod). */
  tagHeader?: string
  /** Further request headers, e.g. a token the purge endpoint asks for. */
  headers?: Record<string, string>
  /** Largest value of `tagHeader` in one request; more tokens go in more requests. Default 4096, at least 1024. */
  maxHeaderBytes?: number
  /** Tries after the first, for a request that failed or was answered 5xx or 429. Default 3. */
  retries?: number
  /** The wait before the first retry; it doubles with each. Default 100 ms. */
  backoffMs?: number
  /** One request's budget. Default 5000 ms. */
  timeoutMs?: number
  /** Waits between tries: injectable, so that tests run on no clock. */
  sleep?: (ms: number) => Promise<unknown>
  /** Where failures are logged. Default: the plugin's logger (given to `onPurge`), else the console. */
  log?: PurgeLog
}

export interface PurgeLog {
  warn: (details: object, message: string) => void
  error: (details: object, message: string) => void
}

/** What one purge sent: requests answered 2xx, and requests given up on. */
export interface PurgeReport {
  sent: number
  failed: number
}

export type HttpPurge = (event: PurgeEvent, context?: Partial<PurgeContext>) => Promise<PurgeReport>

/** A token is never longer than 1,024 bytes (edge.ts): a batch of that size always has room for one. */
const MIN_HEADER_BYTES = 1024
const CONSOLE_LOG: PurgeLog = {
  warn: (details, message) => console.warn(message, details),
  error: (details, message) => console.error(message, details)
}

/** Splits tokens into space-separated header values of at most `maxBytes` each. */
export function purgeBatches (tokens: readonly string[], maxBytes: number): string[] {
  const batches: string[] = []
  let current = ''
  for (const token of tokens) {
    if (current !== '' && current.length + 1 + token.length > maxBytes) {
      batches.push(current)
      current = ''
    }
    current = current === '' ? token : current + ' ' + token
  }
  if (current !== '') batches.push(current)
  return batches
}

function integerOption (value: unknown, option: string, fallback: number, min: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw invalidOption(`httpPurger.${option}`, `expected an integer >= ${min}, got ${String(value)}`)
  }
  return value
}

function checkUrl (url: unknown): URL {
  let parsed: URL | undefined
  try { parsed = new URL(url as string) } catch {}
  if (parsed === undefined || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
    throw invalidOption('httpPurger.url', `expected an http:// or https:// URL, got ${JSON.stringify(String(url))}`)
  }
  return parsed
}

/** An HTTP token (RFC 9110 §5.6.2), as a method or header name must be. */
function tokenOption (value: unknown, option: string, fallback: string): string {
  if (value === undefined) return fallback
  if (typeof value !== 'string' || !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(value)) {
    throw invalidOption(`httpPurger.${option}`, `expected an HTTP token, got ${JSON.stringify(value)}`)
  }
  return value
}

/** Whether a try that ended so is worth another: no answer, an overloaded or failing server. */
function retryable (status: number | undefined): boolean {
  return status === undefined || status === 429 || status >= 500
}

/**
 * An `onPurge` that sends HTTP purge requests, e.g. to Varnish with the xkey vmod: the event's tokens (the same the
 * edge tag header carried) in `tagHeader`, batched under `maxHeaderBytes`, each batch retried with exponential backoff.
 * It fails open: a purge that cannot be sent is logged, and the promise still resolves.
 */
export function httpPurger (options: HttpPurgerOptions): HttpPurge {
  if (typeof options !== 'object' || options === null) throw invalidOption('httpPurger', 'expected { url, method, tagHeader }')
  const url = checkUrl(options.url)
  const method = tokenOption(options.method, 'method', 'PURGE')
  const tagHeader = tokenOption(options.tagHeader, 'tagHeader', 'xkey')
  const maxHeaderBytes = integerOption(options.maxHeaderBytes, 'maxHeaderBytes', 4096, MIN_HEADER_BYTES)
  const retries = integerOption(options.retries, 'retries', 3, 0)
  const backoffMs = integerOption(options.backoffMs, 'backoffMs', 100, 0)
  const timeoutMs = integerOption(options.timeoutMs, 'timeoutMs', 5_000, 1)
  const sleep = options.sleep ?? delay
  const headers = options.headers ?? {}

  /** One try: the status it was answered with, or undefined when there was no answer. */
  async function send (batch: string): Promise<number | undefined> {
    try {
      const response = await fetch(url, {
        method, headers: { ...headers, [tagHeader]: batch }, signal: AbortSignal.timeout(timeoutMs)
      })
      await response.arrayBuffer() // frees the connection for the next purge
      return response.status
    } catch {
      return undefined
    }
  }

  async function purgeBatch (batch: string, log: PurgeLog): Promise<boolean> {
    let status = await send(batch)
    for (let attempt = 0; status === undefined || status < 200 || status >= 300; attempt++) {
      if (attempt === retries || !retryable(status)) {
        log.error({ url: url.href, status: status ?? 'no answer', tries: attempt + 1, [tagHeader]: batch },
          'fastify-cache: edge purge failed; the edge may serve these pages until they expire')
        return false
      }
      log.warn({ url: url.href, status: status ?? 'no answer', attempt: attempt + 1 }, 'fastify-cache: edge purge failed; retrying')
      await sleep(backoffMs * 2 ** attempt)
      status = await send(batch)
    }
    return true
  }

  return async function purge (event, context) {
    const log = options.log ?? context?.log ?? CONSOLE_LOG
    const report: PurgeReport = { sent: 0, failed: 0 }
    if (!Array.isArray(event?.tokens)) {
      // Only an event the plugin did not build lacks them: the keys' tokens depend on the plugin's prefix.
      log.error({ event }, 'fastify-cache: httpPurger was given an event without tokens; nothing was purged')
      return { sent: 0, failed: 1 }
    }
    for (const batch of purgeBatches(event.tokens, maxHeaderBytes)) {
      if (await purgeBatch(batch, log)) report.sent++
      else report.failed++
    }
    return report
  }
}
