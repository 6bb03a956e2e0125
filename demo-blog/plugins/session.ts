import fastifyCsrfProtection from '@fastify/csrf-protection'
import fastifySecureSession from '@fastify/secure-session'
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { loadOrCreateSessionKey, parseSessionKey } from '../lib/session-key.js'

export interface SessionPluginOptions {
  /** 32 bytes, or their hex or base64. When unset, a key is generated once and kept in `keyDir`. */
  key?: Buffer | string
  keyDir: string
  /** `'auto'`: Secure when the request came over https (with trustProxy, as x-forwarded-proto says). */
  secureCookie: boolean | 'auto'
  /** Seconds a login lasts. */
  expirySeconds: number
}

export interface SessionUser {
  id: number
  username: string
}

export interface FlashMessage {
  message: string
  kind: 'ok' | 'warn'
}

declare module '@fastify/secure-session' {
  interface SessionData {
    user: SessionUser
    /** A one-shot message for the next admin page. */
    flash: FlashMessage
    _csrf: string
  }
}

export const SESSION_COOKIE = 'blog_session'

/** The logged-in user, or undefined for an anonymous reader. */
export function currentUser (request: FastifyRequest): SessionUser | undefined {
  const user = request.session?.get('user')
  return typeof user?.username === 'string' ? user : undefined
}

/** onRequest hook of admin routes: no session, no admin page. */
export async function requireUser (request: FastifyRequest, reply: FastifyReply): Promise<void> {
  if (currentUser(request) === undefined) await reply.redirect('/login', 302)
}

export default fp<SessionPluginOptions>(async function sessionPlugin (fastify, options) {
  let key: Buffer
  if (options.key === undefined) {
    const loaded = loadOrCreateSessionKey(options.keyDir)
    if (loaded.created) fastify.log.info({ dir: options.keyDir }, 'generated a session key (set SESSION_KEY to choose one)')
    key = loaded.key
  } else {
    key = Buffer.isBuffer(options.key) ? options.key : parseSessionKey(options.key)
  }

  await fastify.register(fastifySecureSession, {
    key,
    cookieName: SESSION_COOKIE,
    expiry: options.expirySeconds,
    cookie: { path: '/', httpOnly: true, sameSite: 'lax', secure: options.secureCookie }
  })
  // The CSRF secret lives in the encrypted session; the token travels in each form's hidden `_csrf` field.
  await fastify.register(fastifyCsrfProtection, {
    sessionPlugin: '@fastify/secure-session',
    getToken: (request) => (request.body as { _csrf?: unknown } | undefined)?._csrf as string
  })
}, { fastify: '5.x', name: 'blog-session' })
