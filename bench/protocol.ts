// What bench/main.ts and the servers it forks (bench/server.ts) say to each other over IPC.

export const SERVER_CASES = [
  'constant', 'ioredis', 'plugin-hit', 'plugin-l1', 'acd', 'bento', 'miss-plugin', 'miss-process', 'miss-ioredis',
  'miss-bare', 'blog-cached', 'blog-uncached', 'blog-size-l1', 'stampede',
  'coding-hit-br', 'coding-compress-br', 'coding-miss', 'coding-miss-identity', 'blog-identity', 'ahead-on', 'ahead-off'
] as const
export type ServerCase = typeof SERVER_CASES[number]

export type ServerMessage =
  | { type: 'ready', port: number }
  | { type: 'reply', id: number, value: unknown }
  | { type: 'failed', error: string }
  /** The plugin does not offer what the case needs (an option it rejects): the case is reported N/A. */
  | { type: 'unavailable', reason: string }

export type ServerCommand = { id: number, cmd: 'cpu' | 'close' } | { id: number, cmd: 'stats', reset?: boolean }

export interface ServerStats {
  /** Handler runs by URL (the stampede server) or in total (under the key ''). */
  handlerRuns: Record<string, number>
  /** fastify-cache counters, when the case uses the plugin. */
  cache: { hits: number, misses: number, writes: number, errors: number, coalesced: number } | undefined
  /** Most requests in flight at once since the last reset (the stampede server). */
  maxInFlight: number
}
