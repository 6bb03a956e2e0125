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
    // Retry at least twice a second, so that cached pages come back soon after Redis does.
    retryStrategy: (attempt: number) => Math.min(attempt * 50, 500)
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
