import { randomUUID } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyRedis from '@fastify/redis'
import fastifyCache, { type FastifyCacheOptions } from '../../plugin/index.js'
import type { TestRedis } from './redis.js'

let builds = 0

export interface BuildOptions {
  /** Use @fastify/redis on this server; omit for the memory store. */
  redis?: TestRedis
  cache?: FastifyCacheOptions
  logger?: boolean | object
}

/** For apps built without a TestRedis, whose prefix would otherwise repeat from run to run. */
const RUN_PREFIX = `test-${randomUUID().slice(0, 8)}:`

/**
 * A Fastify instance with fastify-cache on real Redis, under the test's own prefix, closed when the test ends.
 * Lookups get a generous budget so that a loaded CI machine does not turn hits into timeouts; the failure tests
 * set their own.
 */
export async function build (
  t: { teardown: (fn: () => unknown) => void },
  { redis, cache = {}, logger = false }: BuildOptions = {}
): Promise<FastifyInstance> {
  const app = Fastify({ logger: logger as boolean })
  t.teardown(async () => await app.close())
  if (redis !== undefined) await app.register(fastifyRedis, { url: redis.url })
  await app.register(fastifyCache, {
    // Each app gets its own prefix, so the tests of one file can share a server without seeing each other's keys, and
    // an app given only a URL (a server shared through REDIS_URL) does not meet an earlier run's keys.
    prefix: `${redis?.prefix ?? RUN_PREFIX}${++builds}:`,
    lookupTimeoutMs: 1_000,
    ...cache
  })
  return app
}

/** One logged line, parsed. */
export type LogLine = Record<string, unknown> & { level: number, msg: string }

/** A Fastify `logger` option that keeps what is logged at `level` and above, for a test to read. */
export function logCollector (level = 'info'): { lines: LogLine[], logger: object } {
  const lines: LogLine[] = []
  return { lines, logger: { level, stream: { write: (line: string) => lines.push(JSON.parse(line) as LogLine) } } }
}
