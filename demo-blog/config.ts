import type { BlogOptions } from './app.js'

export interface ServerConfig {
  host: string
  port: number
  /** Fastify's trustProxy: honour x-forwarded-* from the proxy in front (TRUST_PROXY=true, or its addresses). */
  trustProxy: boolean | string
  logLevel: string
  blog: BlogOptions
}

function integer (value: string | undefined, name: string, fallback: number, min = 0): number {
  if (value === undefined || value === '') return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer >= ${min}, got ${JSON.stringify(value)}`)
  return n
}

function trustProxyOf (value: string | undefined): boolean | string {
  if (value === undefined || value === '' || value === 'false') return false
  if (value === 'true') return true
  return value // addresses or CIDR ranges, comma-separated, as proxy-addr takes them
}

function secureCookieOf (value: string | undefined): boolean | 'auto' {
  if (value === undefined || value === '' || value === 'auto') return 'auto'
  if (value === 'true' || value === '1') return true
  if (value === 'false' || value === '0') return false
  throw new Error(`SECURE_COOKIE must be auto, true or false, got ${JSON.stringify(value)}`)
}

/** The environment of `npm start`, with DESIGN.md's defaults. */
export function configFromEnv (env: NodeJS.ProcessEnv): ServerConfig {
  return {
    host: env.HOST ?? '127.0.0.1',
    port: integer(env.PORT, 'PORT', 3000),
    trustProxy: trustProxyOf(env.TRUST_PROXY),
    logLevel: env.LOG_LEVEL ?? 'info',
    blog: {
      dbPath: env.BLOG_DB ?? './data/blog.db',
      // DESIGN.md: a generated SESSION_KEY is kept under ./data, wherever BLOG_DB points.
      dataDir: './data',
      redisUrl: env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      adminUser: env.ADMIN_USER ?? 'admin',
      adminPassword: env.ADMIN_PASSWORD ?? 'admin',
      sessionKey: env.SESSION_KEY === '' ? undefined : env.SESSION_KEY,
      secureCookie: secureCookieOf(env.SECURE_COOKIE),
      slowMs: integer(env.BLOG_SLOW_MS, 'BLOG_SLOW_MS', 0),
      publicUrl: env.PUBLIC_URL === '' ? undefined : env.PUBLIC_URL,
      edgePurgeUrl: env.EDGE_PURGE_URL === '' ? undefined : env.EDGE_PURGE_URL
    }
  }
}
