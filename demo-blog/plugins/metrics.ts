import fp from 'fastify-plugin'
import { Registry } from 'prom-client'
// From the source, as the blog imports the plugin itself; an app imports 'fastify-cache/prometheus'.
import fastifyCachePrometheus from '../../plugin/prometheus.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The blog's Prometheus registry: the cache's metrics, served at /metrics and read by the dashboard. */
    metricsRegistry: Registry
  }
}

/** The cache's metrics, in a registry of this app's own (an app built twice in one process, as in tests, does not collide). */
export default fp(async function metricsPlugin (fastify) {
  const registry = new Registry()
  await fastify.register(fastifyCachePrometheus, { registry })
  fastify.decorate('metricsRegistry', registry)
}, { fastify: '5.x', name: 'blog-metrics', dependencies: ['blog-cache'] })
