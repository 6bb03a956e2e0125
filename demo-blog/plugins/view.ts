import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import fastifyView from '@fastify/view'
import type { FastifyReply } from 'fastify'
import fp from 'fastify-plugin'
import nunjucks from 'nunjucks'
import { currentUser } from './session.js'

export interface ViewPluginOptions {
  siteName: string
  /** Absolute base URL for canonical links, from configuration: never derived from the Host header. */
  publicUrl: string | undefined
}

export interface PageData {
  [name: string]: unknown
  title?: string
  /** Path of the canonical URL; rendered only when a public URL is configured. */
  canonicalPath?: string
}

declare module 'fastify' {
  interface FastifyReply {
    /**
     * Renders `template` inside the layout and sends it. Adds the logged-in user (and a CSRF token for the admin
     * bar's logout form); anonymous readers get neither, so their pages are the same for everyone and cacheable.
     */
    page(template: string, data?: PageData, statusCode?: number): Promise<FastifyReply>
  }
  interface FastifyInstance {
    /**
     * `reply.page()` for any reply, including the bare one Fastify hands to `frameworkErrors`, which carries no
     * reply decorators.
     */
    sendPage(reply: FastifyReply, template: string, data?: PageData, statusCode?: number): Promise<FastifyReply>
  }
}

const VIEWS = fileURLToPath(new URL('../views', import.meta.url))
const PUBLIC = fileURLToPath(new URL('../public', import.meta.url))

// No scripts at all; styles and images from here (images in posts may be remote https).
const CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'self'; img-src 'self' https: data:; " +
  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

/** The headers every response of the blog carries, error pages included. */
export function setSecurityHeaders (reply: FastifyReply): void {
  reply.header('content-security-policy', CONTENT_SECURITY_POLICY)
  reply.header('x-content-type-options', 'nosniff')
  reply.header('referrer-policy', 'same-origin')
}

/** A page made for one session (the user's, or a form's CSRF token): no proxy or browser history may keep it. */
export const PERSONAL_CACHE_CONTROL = 'private, no-store'

const dateFormat = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeZone: 'UTC' })

export function formatDuration (ms: number): string {
  if (ms < 0) return 'no expiry'
  const seconds = Math.round(ms / 1000)
  const h = Math.floor(seconds / 3600)
  const m = Math.floor((seconds % 3600) / 60)
  const s = seconds % 60
  return h > 0 ? `${h}h ${String(m).padStart(2, '0')}m` : `${m}m ${String(s).padStart(2, '0')}s`
}

export default fp<ViewPluginOptions>(async function viewPlugin (fastify, options) {
  const publicUrl = options.publicUrl?.replace(/\/+$/, '')

  await fastify.register(fastifyView, {
    engine: { nunjucks },
    templates: VIEWS,
    options: {
      autoescape: true,
      trimBlocks: true,
      lstripBlocks: true,
      onConfigure: (env: nunjucks.Environment) => {
        env.addFilter('date', (value: Date | number) => dateFormat.format(new Date(value)))
        env.addFilter('isodate', (value: Date | number) => new Date(value).toISOString())
        env.addFilter('duration', formatDuration)
        env.addFilter('percent', (ratio: number) => `${(ratio * 100).toFixed(1)}%`)
      }
    }
  })
  await fastify.register(fastifyStatic, { root: PUBLIC, prefix: '/static/', decorateReply: false, maxAge: 3600_000 })

  fastify.addHook('onRequest', async (_request, reply) => { setSecurityHeaders(reply) })

  async function sendPage (reply: FastifyReply, template: string, data: PageData = {},
    statusCode?: number): Promise<FastifyReply> {
    const user = currentUser(reply.request)
    // The admin bar's logout form needs a token; anonymous pages must not touch the session (it would set a cookie).
    const csrfToken = data.csrfToken ?? (user !== undefined ? reply.generateCsrf() : undefined)
    const html = await fastify.view(template, {
      siteName: options.siteName,
      ...data,
      user,
      csrfToken,
      canonicalUrl: publicUrl !== undefined && data.canonicalPath !== undefined ? publicUrl + data.canonicalPath : undefined,
      // From the route, not the raw URL: every spelling of a path must render the same page (it may be cached).
      currentPath: reply.request.routeOptions.url
    })
    if (statusCode !== undefined) reply.code(statusCode)
    if (user !== undefined || csrfToken !== undefined) reply.header('cache-control', PERSONAL_CACHE_CONTROL)
    return await reply.type('text/html; charset=utf-8').send(html)
  }

  fastify.decorate('sendPage', sendPage)
  fastify.decorateReply('page', async function page (this: FastifyReply, template: string, data?: PageData,
    statusCode?: number): Promise<FastifyReply> {
    return await sendPage(this, template, data, statusCode)
  })
}, { fastify: '5.x', name: 'blog-view', dependencies: ['blog-session'] })
