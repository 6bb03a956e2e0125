import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Post } from '../db/schema.js'
import { hitRatioChart } from '../lib/chart.js'
import { lookupLatency } from '../lib/latency.js'
import { MAX_BODY_BYTES, MAX_TITLE_CHARS, postFormSchema, validatePostForm, type PostFormFields } from '../lib/post-form.js'
import { requireUser, type FlashMessage } from '../plugins/session.js'
import { INDEX_KEY, postTag } from './blog.js'

export interface AdminRoutesOptions {
  statsIntervalMs: number
}

interface IdParams { id: string }

const idSchema = {
  type: 'object',
  properties: { id: { type: 'string', pattern: '^[1-9][0-9]{0,15}$' } },
  required: ['id']
} as const

const purgeKeySchema = {
  type: 'object',
  properties: { key: { type: 'string', minLength: 1, maxLength: 1000 }, _csrf: { type: 'string' } },
  required: ['key']
} as const

/** A one-shot message for the next admin page. */
function flash (request: FastifyRequest, message: string, kind: 'ok' | 'warn' = 'ok'): void {
  request.session.set('flash', { message, kind })
}

function takeFlash (request: FastifyRequest): FlashMessage | undefined {
  const value = request.session.get('flash')
  if (value !== undefined) request.session.set('flash', undefined)
  return value
}

const PURGE_FAILED = ' The cache did not answer: old pages are purged as soon as it does.'

export default async function adminRoutes (fastify: FastifyInstance, options: AdminRoutesOptions): Promise<void> {
  fastify.addHook('onRequest', requireUser)

  /**
   * Everything tagged with the post: its page, and the index pages that list it (each index page tags itself with its
   * posts). `listChanged`: the post joins or leaves the index (created, published, unpublished, deleted), which
   * the index pages that did not list it must show too, so the index (every ?page=N variant) goes as well.
   */
  async function purgePost (request: FastifyRequest, id: number, listChanged: boolean): Promise<boolean> {
    return await fastify.purgePages(listChanged ? [INDEX_KEY] : [], request.log, [postTag(id)])
  }

  async function renderForm (reply: FastifyReply, post: Partial<Post> & { title: string, body: string, published: boolean },
    errors: string[] = [], statusCode?: number): Promise<FastifyReply> {
    return await reply.page('admin/edit.njk', {
      title: post.id === undefined ? 'New post' : `Edit “${post.title}”`,
      post,
      errors,
      action: post.id === undefined ? '/admin/post' : `/admin/post/${post.id}/edit`,
      maxTitleChars: MAX_TITLE_CHARS,
      maxBodyKb: MAX_BODY_BYTES / 1024
    }, statusCode)
  }

  fastify.get('/admin', async (request, reply) => {
    return await reply.page('admin/index.njk', { title: 'Posts', posts: fastify.posts.listAll(), flash: takeFlash(request) })
  })

  fastify.get('/admin/post/new', async (_request, reply) => {
    return await renderForm(reply, { title: '', body: '', published: true })
  })

  fastify.post<{ Body: PostFormFields }>('/admin/post', {
    schema: { body: postFormSchema },
    preValidation: fastify.csrfProtection
  }, async (request, reply) => {
    const form = validatePostForm(request.body)
    if (!form.ok) return await renderForm(reply, form.value, form.errors, 400)
    const post = fastify.posts.create(form.value)
    // After the commit: a reader arriving between the two sees the old index, never caches it again.
    const purged = await purgePost(request, post.id, true)
    flash(request, `Created “${post.title}”.` + (purged ? '' : PURGE_FAILED), purged ? 'ok' : 'warn')
    return await reply.redirect('/admin', 302)
  })

  fastify.get<{ Params: IdParams }>('/admin/post/:id/edit', { schema: { params: idSchema } }, async (request, reply) => {
    const post = fastify.posts.get(Number(request.params.id))
    if (post === undefined) return await reply.callNotFound()
    return await renderForm(reply, post)
  })

  fastify.post<{ Params: IdParams, Body: PostFormFields }>('/admin/post/:id/edit', {
    schema: { params: idSchema, body: postFormSchema },
    preValidation: fastify.csrfProtection
  }, async (request, reply) => {
    const id = Number(request.params.id)
    const form = validatePostForm(request.body)
    if (!form.ok) return await renderForm(reply, { ...form.value, id }, form.errors, 400)
    const wasPublished = fastify.posts.get(id)?.published
    const post = fastify.posts.update(id, form.value)
    if (post === undefined) return await reply.callNotFound()
    // An edit that keeps the post in (or out of) the index purges only the pages that show it, by its tag.
    const purged = await purgePost(request, id, post.published !== wasPublished)
    flash(request, `Saved “${post.title}”.` + (purged ? '' : PURGE_FAILED), purged ? 'ok' : 'warn')
    return await reply.redirect('/admin', 302)
  })

  fastify.post<{ Params: IdParams }>('/admin/post/:id/delete', {
    schema: { params: idSchema },
    preValidation: fastify.csrfProtection
  }, async (request, reply) => {
    const id = Number(request.params.id)
    if (!fastify.posts.delete(id)) return await reply.callNotFound()
    const purged = await purgePost(request, id, true)
    flash(request, `Deleted post ${id}.` + (purged ? '' : PURGE_FAILED), purged ? 'ok' : 'warn')
    return await reply.redirect('/admin', 302)
  })

  // The Flask post's Flask-DebugToolbar, as a page: counters, hit ratio over time, keys, purge buttons.
  fastify.get('/admin/cache', async (request, reply) => {
    let keys: Awaited<ReturnType<typeof fastify.cache.keys>> = []
    let keysError: string | undefined
    try {
      keys = (await fastify.cache.keys({ limit: 500 })).sort((a, b) => a.key.localeCompare(b.key))
    } catch (err) {
      request.log.warn({ err }, 'cannot list cache keys')
      keysError = 'The cache store did not answer; keys cannot be listed right now.'
    }
    const history = fastify.cacheHistory
    return await reply.page('admin/cache.njk', {
      title: 'Cache',
      stats: fastify.cache.stats(),
      storeKind: fastify.cache.storeKind,
      prefix: fastify.cache.prefix,
      keys,
      keysError,
      pendingPurges: [...fastify.pendingPurges],
      chart: hitRatioChart(history.samples(), {
        intervalMs: options.statsIntervalMs, capacity: history.capacity, now: Date.now()
      }),
      chartMinutes: Math.round(options.statsIntervalMs * history.capacity / 60_000),
      latency: await lookupLatency(fastify.metricsRegistry),
      intervalSeconds: Math.round(options.statsIntervalMs / 1000),
      flash: takeFlash(request)
    })
  })

  // Prometheus text, for an admin (a scraper sends the admin's session cookie, or the app serves it on another port).
  fastify.get('/metrics', async (_request, reply) => {
    reply.header('cache-control', 'no-store')
    return await reply.type(fastify.metricsRegistry.contentType).send(await fastify.metricsRegistry.metrics())
  })

  fastify.post<{ Body: { key: string } }>('/admin/cache/purge', {
    schema: { body: purgeKeySchema },
    preValidation: fastify.csrfProtection
  }, async (request, reply) => {
    const { key } = request.body
    try {
      const existed = await fastify.cache.delete(key)
      flash(request, existed ? `Purged ${key}.` : `${key} was not in the cache.`)
    } catch (err) {
      request.log.error({ err, key }, 'purge failed')
      flash(request, `Could not purge ${key}: the cache store did not answer.`, 'warn')
    }
    return await reply.redirect('/admin/cache', 302)
  })

  fastify.post('/admin/cache/clear', { preValidation: fastify.csrfProtection }, async (request, reply) => {
    try {
      const removed = await fastify.cache.clear()
      flash(request, `Cleared the cache: ${removed} key${removed === 1 ? '' : 's'} removed.`)
    } catch (err) {
      request.log.error({ err }, 'clear failed')
      flash(request, 'Could not clear the cache: the store did not answer.', 'warn')
    }
    return await reply.redirect('/admin/cache', 302)
  })
}
