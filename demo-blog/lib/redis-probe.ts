import type { FastifyBaseLogger } from 'fastify'
import { Redis } from 'ioredis'

/**
 * Connects to `url` and PINGs it within `timeoutMs`. Resolves the connected client, or undefined (with the client
 * closed) when Redis does not answer in time, so the blog can start on the memory store instead.
 */
export async function connectRedis (url: string, timeoutMs: number, log: FastifyBaseLogger): Promise<Redis | undefined> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 1,
    // Reconnect soon after Redis is back: under load every step of a reconnection (the connect, the handshake, the
    // ready check) waits for a turn of the busy event loop, a few hundred milliseconds each. Attempts at least five
    // times a second, and no ready check (INFO, one more round trip): a server still loading its data answers
    // LOADING, which the cache counts as a failure and fails open on, like any other.
    retryStrategy: (attempt: number) => Math.min(attempt * 50, 200),
    enableReadyCheck: false
  })
  // Without a listener ioredis prints every reconnection error; the cache plugin already reports store failures.
  client.on('error', (err: Error) => log.debug({ err }, 'redis connection error'))
  let timer: NodeJS.Timeout | undefined
  try {
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)
    })
    await Promise.race([client.connect().then(async () => await client.ping()), timeout])
    return client
  } catch (err) {
    log.debug({ err, url: redactUrl(url) }, 'redis probe failed')
    client.disconnect()
    return undefined
  } finally {
    clearTimeout(timer)
  }
}

/** The URL without its password, for logs. */
export function redactUrl (url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password !== '') parsed.password = '***'
    return parsed.toString()
  } catch {
    return '(unparsable URL)'
  }
}
