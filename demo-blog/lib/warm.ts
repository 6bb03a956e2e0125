import type { FastifyInstance } from 'fastify'

/** Newest posts warmed on start: those the index links first. */
export const WARM_NEWEST_POSTS = 5

/** The pages a visitor asks for first: the index, the about page and the newest published posts. */
export function pagesToWarm (app: FastifyInstance, newest = WARM_NEWEST_POSTS): string[] {
  return ['/', '/about', ...app.posts.listPublished(1, newest).posts.map((post) => `/post/${post.id}`)]
}

/**
 * Renders the first pages into the cache, so the first visitors get hits. Never rejects and never holds startup: a
 * page that is not stored (Redis down, say) is logged, and it is cached on its first visit instead.
 */
export async function warmBlog (app: FastifyInstance): Promise<void> {
  try {
    const { stored, failed } = await app.cache.warm(pagesToWarm(app), { concurrency: 2 })
    if (failed.length === 0) app.log.info({ stored }, `cache warmed: ${stored} pages`)
    else app.log.warn({ stored, failed }, `cache warming: ${stored} pages stored, ${failed.length} not`)
  } catch (err) {
    app.log.warn({ err }, 'cache warming failed; pages are cached on their first visit')
  }
}
