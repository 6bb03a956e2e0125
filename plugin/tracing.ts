import { tracingChannel } from 'node:diagnostics_channel'
import { performance } from 'node:perf_hooks'
import type { FastifyRequest } from 'fastify'
import type { RequestKey } from './key.js'
import type { Outcome } from './lookup.js'
import type { CacheObservers } from './observers.js'

/** What every trace of a page carries: where the page lives and which route it belongs to. */
export interface PageTraceContext {
  /** The store key, prefix included, as it is in Redis (`fastify-cache:view//post/7`). */
  key: string
  /** '' for the plain page; the hash of its query and `vary` values otherwise. */
  variant: string
  /** The route pattern (`/post/:id`), never the raw URL. */
  route: string
}

export interface LookupTraceContext extends PageTraceContext {
  /** Set when the lookup ends: `hit`, `stale`, `miss`, or `pass` (run the handler, store nothing). */
  outcome?: Outcome['kind']
  /** The same, as Node's tracePromise sets it. */
  result?: Outcome['kind']
}

export type ComputeTraceContext = PageTraceContext

export interface StoreTraceContext extends PageTraceContext {
  /** Set when the write ends: false when the store refused it (a purge overtook it) or failed. */
  written?: boolean
  /** The same, as Node's tracePromise sets it. */
  result?: boolean
}

/** The names are public (DESIGN.md): OpenTelemetry instrumentations subscribe to them. */
export const TRACING_CHANNELS = {
  lookup: 'fastify-cache:lookup',
  compute: 'fastify-cache:compute',
  store: 'fastify-cache:store'
} as const

export const lookupChannel = tracingChannel<unknown, LookupTraceContext>(TRACING_CHANNELS.lookup)
export const computeChannel = tracingChannel<unknown, ComputeTraceContext>(TRACING_CHANNELS.compute)
export const storeChannel = tracingChannel<unknown, StoreTraceContext>(TRACING_CHANNELS.store)

/** A handler run under way, from the miss decision to onSend; undefined on the request when nobody listens. */
export interface ComputeTrace {
  readonly context: ComputeTraceContext
  readonly startedAt: number
  /** Whether `start` was published, so `end` is too (a subscriber may come or go meanwhile). */
  readonly traced: boolean
}

function contextOf (request: FastifyRequest, key: { storeKey: string, variant: string }): PageTraceContext {
  return { key: key.storeKey, variant: key.variant, route: request.routeOptions.url as string }
}

/**
 * Runs a page lookup inside the `fastify-cache:lookup` trace (start, end, asyncStart, asyncEnd; error never: a lookup
 * fails open) and times it for the observers. With nobody listening, it is the bare call.
 */
export function traceLookup (
  observers: CacheObservers, request: FastifyRequest, key: RequestKey, lookup: () => Promise<Outcome>
): Promise<Outcome> {
  // Unobserved, the lookup's own promise: every request that reaches the store pays for any wrapper here.
  if (!lookupChannel.hasSubscribers && !observers.active) return lookup()
  return tracedLookup(observers, request, key, lookup)
}

async function tracedLookup (
  observers: CacheObservers, request: FastifyRequest, key: RequestKey, lookup: () => Promise<Outcome>
): Promise<Outcome> {
  const traced = lookupChannel.hasSubscribers
  const context: LookupTraceContext = contextOf(request, key)
  const startedAt = performance.now()
  let outcome!: Outcome
  // Resolves the outcome's kind, not the outcome: tracePromise hands its result to subscribers (`context.result`),
  // and the outcome holds the page and the request's bookkeeping.
  const settle = async (): Promise<Outcome['kind']> => {
    outcome = await lookup()
    context.outcome = outcome.kind
    return outcome.kind
  }
  await (traced ? lookupChannel.tracePromise(settle, context) : settle())
  observers.emit('lookup', { route: context.route, outcome: outcome.kind, durationMs: performance.now() - startedAt })
  return outcome
}

/**
 * The handler of a miss starts: `start` on `fastify-cache:compute`. The handler runs between hooks, not inside one
 * call, so the trace is `start` here and `end` in onSend (`endCompute`), with the one context object.
 */
export function startCompute (observers: CacheObservers, request: FastifyRequest, key: RequestKey): ComputeTrace | undefined {
  const traced = computeChannel.hasSubscribers
  if (!traced && !observers.active) return undefined
  const context = contextOf(request, key)
  if (traced) computeChannel.start.publish(context)
  return { context, startedAt: performance.now(), traced }
}

/** onSend has the payload of a miss: `end` on `fastify-cache:compute`, and the duration to the observers. */
export function endCompute (observers: CacheObservers, trace: ComputeTrace | undefined): void {
  if (trace === undefined) return
  if (trace.traced) computeChannel.end.publish(trace.context)
  observers.emit('compute', { route: trace.context.route, durationMs: performance.now() - trace.startedAt })
}

/** Runs a page write inside the `fastify-cache:store` trace; the context says whether the store took it. */
export async function traceStore (
  miss: { storeKey: string, variant: string, route?: string | undefined }, write: () => Promise<boolean>
): Promise<boolean> {
  if (!storeChannel.hasSubscribers) return await write()
  const context: StoreTraceContext = { key: miss.storeKey, variant: miss.variant, route: miss.route as string }
  return await storeChannel.tracePromise(async () => {
    const written = await write()
    context.written = written
    return written
  }, context)
}
