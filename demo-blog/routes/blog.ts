import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { previewOf, renderMarkdown } from '../lib/markdown.js'
import { currentUser } from '../plugins/session.js'

export interface BlogRoutesOptions {
  /** Simulated work on the index, like the Flask post's `time.sleep(1)`. */
  slowMs: number
  perPage: number
}

/** Flask's `unless=is_login`: a logged-in admin always gets a fresh page, and it is never stored. */
const isLoggedIn = (request: FastifyRequest): boolean => currentUser(request) !== undefined

/** `/post/1` only: `/post/01` would be another cache key for the same post, which a purge would miss. */
const CANONICAL_ID = /^[1-9][0-9]{0,15}$/

export const INDEX_KEY = 'view//'
export const postKey = (id: number | string): string => `view//post/${id}`
export const postTag = (id: number | string): string => `post:${id}`

export default async function blogRoutes (fastify: FastifyInstance, options: BlogRoutesOptions): Promise<void> {
  fastify.get<{ Querystring: { page?: number } }>('/', {
    schema: {
      querystring: {
        type: 'object',
        properties: { page: { type: 'integer', minimum: 1, maximum: 1_000_000 } }
      }
    },
    // A query string other than ?page=N bypasses the cache rather than filling it with variants.
    config: { cache: { ttl: 20 * 60, unless: isLoggedIn, queryString: ['page'] } }
  }, async (request, reply) => {
    if (options.slowMs > 0) await sleep(options.slowMs)
    const page = request.query.page ?? 1
    const { posts, total } = fastify.posts.listPublished(page, options.perPage)
    const pages = Math.max(1, Math.ceil(total / options.perPage))
    if (page > pages) return await reply.callNotFound()
    // Tagged with every post it shows: an edit of one of them purges this page; an edit of any other leaves it.
    reply.cacheTags(...posts.map((post) => postTag(post.id)))
    return await reply.page('index.njk', {
      canonicalPath: page === 1 ? '/' : `/?page=${page}`,
      posts: posts.map((post) => ({ id: post.id, title: post.title, createdAt: post.createdAt, preview: previewOf(post.body) })),
      pagination: { page, pages, previous: page > 1 ? page - 1 : undefined, next: page < pages ? page + 1 : undefined }
    })
  })

  fastify.get('/about', {
    config: { cache: { ttl: 2 * 3600, unless: isLoggedIn } }
  }, async (_request, reply) => {
    return await reply.page('about.njk', { title: 'About', canonicalPath: '/about' })
  })

  fastify.get<{ Params: { id: string } }>('/post/:id', {
    config: {
      cache: {
        ttl: 30 * 60,
        unless: isLoggedIn,
        tags: (request) => [postTag(String(request.params.id))]
      }
    }
  }, async (request, reply) => {
    const { id } = request.params
    if (!CANONICAL_ID.test(id)) return await reply.callNotFound()
    // Drafts: visible to the admin (whose pages are never cached), a 404 for everyone else.
    const post = isLoggedIn(request) ? fastify.posts.get(Number(id)) : fastify.posts.getPublished(Number(id))
    if (post === undefined) return await reply.callNotFound()
    return await reply.page('post.njk', {
      title: post.title,
      canonicalPath: `/post/${post.id}`,
      post: { ...post, html: renderMarkdown(post.body) }
    })
  })
}
