import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import type { CacheEngine } from './engine.js'
import { kCacheMiss, RouteCache } from './hooks.js'
import { normalizeRouteOptions, type NormalizedOptions, type NormalizedRouteOptions, type RouteCacheOptions } from './options.js'

/** Marks a route whose own onSend stores its misses. */
const kStoresLast = Symbol('fastify-cache.storesLast')

/** A route's config as Fastify keeps it: one object per route, the same for each of its requests. */
type RouteConfig = object & { cache?: RouteCacheOptions | boolean, method?: unknown, url?: unknown, [kStoresLast]?: boolean }

/**
 * The cached routes, found from the request rather than wired into each route. The cache's hooks are the app's own
 * (instance-level), so a route declared before the plugin loaded is cached too, and every onRequest hook of another
 * plugin (rate limits, CORS, sessions, auth) runs before a hit is served.
 */
export class CachedRoutes {
  readonly #engine: () => CacheEngine
  readonly #options: NormalizedOptions
  /** Route options checked as their route was added, by their `config.cache` object. */
  readonly #normalized = new WeakMap<object, NormalizedRouteOptions>()
  /** Built on a route's first request, when the store is settled; null for a route without `config.cache`. */
  readonly #routes = new WeakMap<RouteConfig, RouteCache | null>()

  /** `engine` is read when a route is first met: the store may be settled only when the app is ready. */
  constructor (engine: () => CacheEngine, options: NormalizedOptions) {
    this.#engine = engine
    this.#options = options
  }

  readonly preHandler = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void => {
    const route = this.#of(request)
    if (route === null) done()
    else route.preHandler(request, reply, done)
  }

  /**
   * The app's onSend. Only a request that missed has anything to store; every other response passes through untouched.
   * On a route the plugin saw being added, the route's own onSend stores it instead (`onSendLast`). Otherwise (a route
   * declared before the plugin loaded, or another context answering: `callNotFound`) it is stored here, so that its
   * flight and lock end. (A context created before the plugin loaded has no decorated slot: undefined is null there.)
   */
  readonly onSend = (request: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: Error | null, payload?: unknown) => void): void => {
    const pending = request[kCacheMiss]
    if (pending == null || (request.routeOptions.config as RouteConfig)[kStoresLast] === true) done(null, payload)
    else pending.route.onSend(request, reply, payload, done)
  }

  /**
   * A cached route's own onSend: route hooks run after every app-level one, so the response is stored as the other
   * plugins' onSend hooks left it (a session cookie that one of them sets keeps it out of the cache, whatever the
   * order of registration).
   */
  readonly onSendLast = (request: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: Error | null, payload?: unknown) => void): void => {
    const pending = request[kCacheMiss]
    if (pending == null) done(null, payload)
    else pending.route.onSend(request, reply, payload, done)
  }

  /**
   * Called as a cached route is added, with its options as checked then (read once: not again on its first request).
   * It stores its misses in its own onSend, after the app's.
   */
  wire (routeOptions: { config?: object, onSend?: unknown }, normalized: NormalizedRouteOptions): void {
    const config = routeOptions.config as RouteConfig
    if (typeof config.cache === 'object') this.#normalized.set(config.cache, normalized)
    config[kStoresLast] = true
    const hooks = routeOptions.onSend
    // A new array: the caller's is shared with the HEAD route Fastify derives from this one.
    routeOptions.onSend = [...(hooks === undefined ? [] : Array.isArray(hooks) ? hooks : [hooks]), this.onSendLast]
  }

  #of (request: FastifyRequest): RouteCache | null {
    const config = request.routeOptions.config as RouteConfig
    let route = this.#routes.get(config)
    if (route === undefined) {
      route = this.#build(config, request)
      this.#routes.set(config, route)
    }
    return route
  }

  #build (config: RouteConfig, request: FastifyRequest): RouteCache | null {
    const cache = config.cache
    if (cache === undefined || cache === false) return null
    const label = `${String(config.method)} ${String(config.url)}`
    try {
      const normalized = (typeof cache === 'object' ? this.#normalized.get(cache) : undefined) ??
        normalizeRouteOptions(cache, this.#options, label)
      return new RouteCache(this.#engine(), normalized)
    } catch (err) {
      // Only a route the plugin did not see being added gets here (its options were not checked at registration):
      // it is served uncached, and said so loudly.
      request.log.error({ err }, `fastify-cache: ${label} is not cached: its config.cache is invalid`)
      return null
    }
  }
}
