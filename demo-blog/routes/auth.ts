import type { FastifyInstance } from 'fastify'
import { verifyNobody, verifyPassword } from '../lib/passwords.js'
import { currentUser } from '../plugins/session.js'
import { INDEX_KEY } from './blog.js'

export interface AuthRoutesOptions {
  /** Attempts of POST /login per IP per window. */
  loginRateLimit: { max: number, timeWindow: number | string }
}

interface LoginBody {
  username?: string
  password?: string
  _csrf?: string
}

const loginSchema = {
  body: {
    type: 'object',
    properties: {
      username: { type: 'string', maxLength: 200 },
      password: { type: 'string', maxLength: 1024 },
      _csrf: { type: 'string' }
    }
  }
} as const

export default async function authRoutes (fastify: FastifyInstance, options: AuthRoutesOptions): Promise<void> {
  fastify.get('/login', async (request, reply) => {
    if (currentUser(request) !== undefined) return await reply.redirect('/admin', 302)
    return await reply.page('login.njk', { title: 'Log in', csrfToken: reply.generateCsrf() })
  })

  fastify.post<{ Body: LoginBody }>('/login', {
    schema: loginSchema,
    config: { rateLimit: options.loginRateLimit },
    preValidation: fastify.csrfProtection
  }, async (request, reply) => {
    const username = (request.body?.username ?? '').trim()
    const password = request.body?.password ?? ''
    const user = username === '' ? undefined : fastify.users.find(username)
    const valid = user === undefined ? await verifyNobody(password) : await verifyPassword(password, user.passwordHash)
    if (user === undefined || !valid) {
      request.log.info({ username }, 'login failed')
      return await reply.page('login.njk', {
        title: 'Log in', username, error: 'Wrong username or password.', csrfToken: reply.generateCsrf()
      }, 401)
    }
    // A new session on login: nothing from before (a planted CSRF secret, say) carries over.
    request.logIn({ id: user.id, username: user.username })
    request.log.info({ username }, 'logged in')
    // As the Flask post did on login; the admin's own pages bypass the cache anyway.
    await fastify.purgePages([INDEX_KEY], request.log)
    return await reply.redirect('/admin', 302)
  })

  fastify.post('/logout', { preValidation: fastify.csrfProtection }, async (request, reply) => {
    request.logOut()
    await fastify.purgePages([INDEX_KEY], request.log)
    return await reply.redirect('/', 302)
  })
}
