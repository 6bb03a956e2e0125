import fastifyFormbody from '@fastify/formbody'
import fastifyRateLimit from '@fastify/rate-limit'
import fp from 'fastify-plugin'

/** HTML forms (application/x-www-form-urlencoded) and per-route rate limits (`config.rateLimit`). */
export default fp(async function formsPlugin (fastify) {
  await fastify.register(fastifyFormbody)
  await fastify.register(fastifyRateLimit, { global: false })
}, { fastify: '5.x', name: 'blog-forms' })
