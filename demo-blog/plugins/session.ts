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
  /** Seconds a login lasts, counted from the login (the server-side row's expiry). */
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
    /** The id of the server-side session (`fastify.sessions`), whose row says who is logged in. */
    sid: string
    /** A one-shot message for the next admin page. */
    flash: FlashMessage
    _csrf: string
  }
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Starts a new session for `user`: a fresh cookie (nothing from before carries over) and a fresh row. */
    logIn (user: SessionUser): void
    /** Ends the session: its row is deleted, so a copy of the cookie taken before is anonymous from now on. */
    logOut (): void
  }
}

export const SESSION_COOKIE = 'blog_session'

/** Who each request's session belongs to, looked up once per request (null: nobody). */
const owners = new WeakMap<FastifyRequest, SessionUser | null>()

/**
 * The logged-in user, or undefined for an anonymous reader. A cookie alone is not enough: its session must still
 * have a live row, so a logged-out or expired session is anonymous everywhere (admin routes, `unless`, pages).
 */
export function currentUser (request: FastifyRequest): SessionUser | undefined {
  const known = owners.get(request)
  if (known !== undefined) return known ?? undefined
  // request.session is missing when the session hook never ran (frameworkErrors answers before any hook).
  const sid = request.session?.get('sid')
  const owner = typeof sid === 'string' ? request.server.sessions.ownerOf(sid) : undefined
  owners.set(request, owner ?? null)
  return owner
}

/** onRequest hook of admin routes: no live session, no admin page. */
export async function requireUser (request: FastifyRequest, reply: FastifyReply): Promise<void> {
  if (currentUser(request) === undefined) await reply.redirect('/login', 302)
}

function revokeSession (request: FastifyRequest): void {
  const sid = request.session.get('sid')
  if (typeof sid === 'string') request.server.sessions.revoke(sid)
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

  const lifetimeMs = options.expirySeconds * 1000
  fastify.decorateRequest('logIn', function logIn (this: FastifyRequest, user: SessionUser): void {
    revokeSession(this) // logging in again, as someone else maybe: the old session ends
    this.session.regenerate()
    this.session.set('sid', this.server.sessions.create(user.id, lifetimeMs))
    owners.set(this, user)
  })
  fastify.decorateRequest('logOut', function logOut (this: FastifyRequest): void {
    revokeSession(this)
    this.session.delete()
    owners.set(this, null)
  })
}, { fastify: '5.x', name: 'blog-session', dependencies: ['blog-db'] })
