import type { FastifyInstance } from 'fastify'

export interface BlogHealth {
  /** The blog's Redis answered a PING within the budget; 'down' too when the blog runs on the memory store. */
  redis: 'up' | 'down'
  /** The cache's invalidation bus: 'off' on the memory store. */
  bus: 'up' | 'down' | 'off'
  breaker: 'closed' | 'open' | 'half-open'
}

/** How long /healthz waits for Redis: a load balancer's probe must not hang on a dead one. */
const HEALTH_TIMEOUT_MS = 500

/**
 * GET /healthz: 200 when Redis is up, 503 otherwise, for a load balancer or an orchestrator. The pages are served
 * either way (the cache fails open); 503 says this instance runs without its shared cache. Never cached.
 */
export default async function healthRoutes (fastify: FastifyInstance): Promise<void> {
  fastify.get('/healthz', async (_request, reply) => {
    const health = await fastify.cache.health({ timeoutMs: HEALTH_TIMEOUT_MS })
    const body: BlogHealth = {
      redis: fastify.cache.storeKind === 'redis' && health.store === 'up' ? 'up' : 'down',
      bus: health.bus,
      breaker: health.breaker
    }
    reply.header('cache-control', 'no-store')
    return await reply.code(body.redis === 'up' ? 200 : 503).send(body)
  })
}
