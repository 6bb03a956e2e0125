import type { FastifyServerOptions } from 'fastify'
import { frameworkErrors } from './errors.js'

/**
 * What the blog needs from `Fastify(...)` itself, because a plugin cannot set it later: errors raised before routing
 * get the blog's HTML page. server.ts and the tests' buildBlog both start from these.
 */
export const blogServerOptions: FastifyServerOptions = {
  frameworkErrors
}
