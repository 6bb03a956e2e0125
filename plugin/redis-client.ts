import type { Cluster, Redis } from 'ioredis'

/** What the plugin accepts as Redis: an ioredis client or Cluster (the @fastify/redis decorator is one). */
export type RedisClient = Redis | Cluster
