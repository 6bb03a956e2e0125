import type { FastifyBaseLogger } from 'fastify'
import { purgeTokens, type EdgeTagHeader } from './edge.js'
import type { Keyspace } from './keyspace.js'

/** What `delete`, `deleteMany`, `invalidateTags` or `clear` purged, as the app's `onPurge` hears of it. */
export interface PurgeEvent {
  /** The keys as the app named them (`view//`), each with every variant; empty for a purge by tags. */
  keys: string[]
  tags: string[]
  /** `clear()`: everything under the prefix. */
  all: boolean
  /**
   * The same purge as the edge tag header spells it (`edge.tagHeader`, or `surrogate-key` without `edge`): the keys'
   * and tags' tokens, or the catch-all token when `all`. What `httpPurger` sends.
   */
  tokens: string[]
}

export interface PurgeContext {
  /** The app's logger, for an `onPurge` that has nothing better. */
  log: FastifyBaseLogger
}

export type OnPurge = (event: PurgeEvent, context: PurgeContext) => unknown

/**
 * Tells the app's `onPurge` what a purge removed, once the store has removed it, so that it can purge a CDN too. The
 * hook is awaited (an edge purged before the API call resolves lets an editor read their own write through the CDN),
 * and a hook that throws or rejects is logged: it never fails the purge, which has happened.
 */
export class PurgeReporter {
  readonly #onPurge: OnPurge | undefined
  readonly #keyspace: Keyspace
  readonly #tagHeader: EdgeTagHeader
  readonly #log: FastifyBaseLogger

  constructor (onPurge: OnPurge | undefined, keyspace: Keyspace, tagHeader: EdgeTagHeader, log: FastifyBaseLogger) {
    this.#onPurge = onPurge
    this.#keyspace = keyspace
    this.#tagHeader = tagHeader
    this.#log = log
  }

  async report (purge: { keys?: readonly string[], tags?: readonly string[], all?: boolean }): Promise<void> {
    if (this.#onPurge === undefined) return
    const keys = [...purge.keys ?? []]
    const tags = [...purge.tags ?? []]
    const all = purge.all === true
    const event: PurgeEvent = { keys, tags, all, tokens: purgeTokens({ keys, tags, all }, this.#keyspace, this.#tagHeader) }
    try {
      await this.#onPurge(event, { log: this.#log })
    } catch (err) {
      this.#log.error({ err, keys, tags, all }, 'fastify-cache: onPurge failed; the cache was purged, the edge may not be')
    }
  }
}
