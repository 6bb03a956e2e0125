import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { Cluster } from 'ioredis'
import type { RedisClient } from './redis-client.js'

export interface BusMessage {
  /** The instance that published it; an instance ignores its own. */
  from: string
  /** Set on purges; an instance that applied one answers with `ack` set to it. */
  id?: string
  ack?: string
  /** Epoch milliseconds at publish, to measure delivery; absent from the messages of older versions. */
  at?: number
  /** Store keys purged (every variant), tags invalidated, or `all` for a clear. */
  keys?: string[]
  tags?: string[]
  all?: boolean
  /** Store keys whose values were rewritten: L1 copies are dropped, nothing is purged. */
  evict?: string[]
}

export interface BusStats {
  connected: boolean
  received: number
  /** Purges whose confirmations did not all arrive within BUS_ACK_TIMEOUT_MS. */
  ackTimeouts: number
  /** Publish-to-delivery delay of the last message and the largest seen, in milliseconds. */
  lastDelayMs: number
  maxDelayMs: number
}

/** How long a purge waits for the other instances to confirm they dropped their copies. */
export const BUS_ACK_TIMEOUT_MS = 1_000

/**
 * Invalidations over Redis pub/sub, on a second connection: every delete, invalidateTags or clear is published, and
 * every instance drops the entries from its own L1 and stops storing responses computed before it.
 */
export class InvalidationBus {
  readonly instanceId = randomUUID()
  readonly channel: string
  /** Confirmations travel apart from the purges, so that a listener on the channel sees purges only. */
  readonly ackChannel: string
  private readonly publisher: RedisClient
  private readonly subscriber: RedisClient
  private readonly log: FastifyBaseLogger
  private connected = false
  private readonly counters = { received: 0, lastDelayMs: 0, maxDelayMs: 0, ackTimeouts: 0 }
  /** Purges of ours still waiting for confirmations, by id. */
  private readonly awaiting = new Map<string, { remaining: number, done: () => void }>()

  constructor (
    publisher: RedisClient, channel: string, log: FastifyBaseLogger,
    /** `delayMs`: publish to delivery, when the message says when it was published. */
    private readonly onMessage: (message: BusMessage, delayMs: number | undefined) => void,
    private readonly onHealth: (connected: boolean) => void
  ) {
    this.publisher = publisher
    this.channel = channel
    this.ackChannel = channel + ':ack'
    this.log = log
    this.subscriber = (publisher as { duplicate: () => RedisClient }).duplicate()
    this.subscriber.on('error', (err: Error) => this.log.debug({ err }, 'fastify-cache: bus connection error'))
    this.subscriber.on('message', (_channel: string, text: string) => this.receive(text))
    // ioredis resubscribes by itself after a reconnect and then reports ready again.
    this.subscriber.on('ready', () => this.setConnected(true))
    for (const event of ['close', 'end', 'reconnecting']) this.subscriber.on(event, () => this.setConnected(false))
  }

  get stats (): BusStats {
    return { connected: this.connected, ...this.counters }
  }

  async start (): Promise<void> {
    await this.subscriber.subscribe(this.channel, this.ackChannel)
    this.setConnected(true)
  }

  private setConnected (connected: boolean): void {
    if (connected === this.connected) return
    this.connected = connected
    if (connected) this.log.info('fastify-cache: invalidation bus connected')
    else this.log.warn('fastify-cache: invalidation bus down; the in-process tier is off until it is back')
    this.onHealth(connected)
  }

  /** A message on the channel or the ack channel: the only two this connection subscribes to. */
  private receive (text: string): void {
    let message: BusMessage
    try {
      message = JSON.parse(text) as BusMessage
    } catch (err) {
      this.log.warn({ err }, 'fastify-cache: unreadable bus message ignored')
      return
    }
    if (message.from === this.instanceId) return
    if (message.ack !== undefined) {
      const waiting = this.awaiting.get(message.ack)
      if (waiting !== undefined && --waiting.remaining <= 0) waiting.done()
      return
    }
    this.counters.received++
    const delayMs = typeof message.at === 'number' ? Math.max(0, Date.now() - message.at) : undefined
    if (delayMs !== undefined) {
      this.counters.lastDelayMs = delayMs
      this.counters.maxDelayMs = Math.max(this.counters.maxDelayMs, delayMs)
    }
    this.onMessage(message, delayMs)
    if (message.id !== undefined) {
      this.publisher.publish(this.ackChannel, JSON.stringify({ from: this.instanceId, at: Date.now(), ack: message.id }))
        .catch((err: unknown) => this.log.debug({ err }, 'fastify-cache: bus confirmation not sent'))
    }
  }

  /**
   * Publishes a purge and waits until every other instance listening has applied it (up to BUS_ACK_TIMEOUT_MS), so
   * that the purge's caller can answer knowing no instance still holds the old page in memory. On a Cluster, PUBLISH
   * counts only one node's listeners, so the wait is skipped there.
   */
  async publish (message: Omit<BusMessage, 'from' | 'at' | 'id' | 'ack'>): Promise<void> {
    const id = randomUUID()
    const listeners = await this.publisher.publish(this.channel,
      JSON.stringify({ ...message, from: this.instanceId, at: Date.now(), id }))
    const others = Number(listeners) - (this.connected ? 1 : 0)
    if (others <= 0 || (this.publisher as Cluster).isCluster === true) return
    await new Promise<void>((resolve) => {
      const finish = (): void => {
        clearTimeout(timer)
        this.awaiting.delete(id)
        resolve()
      }
      const timer = setTimeout(() => {
        this.counters.ackTimeouts++
        finish()
      }, BUS_ACK_TIMEOUT_MS)
      this.awaiting.set(id, { remaining: others, done: finish })
    })
  }

  async close (): Promise<void> {
    this.subscriber.removeAllListeners('ready')
    this.subscriber.disconnect()
  }
}
