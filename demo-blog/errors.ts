import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { setSecurityHeaders } from './plugins/view.js'

const TITLES: Record<number, string> = {
  400: 'Bad request',
  401: 'Not logged in',
  403: 'Forbidden',
  404: 'Page not found',
  413: 'Too large',
  414: 'Address too long',
  429: 'Too many attempts',
  500: 'Something went wrong'
}

const MESSAGES: Record<string, string> = {
  FST_CSRF_INVALID_TOKEN: 'The form was not sent by this site, or it expired. Go back, reload the page and try again.',
  FST_CSRF_MISSING_SECRET: 'The form was not sent by this site, or it expired. Go back, reload the page and try again.',
  FST_ERR_CTP_BODY_TOO_LARGE: 'What you sent is larger than this site accepts.',
  FST_ERR_BAD_URL: 'This address is not valid: it has a malformed %-escape.',
  FST_ERR_MAX_PARAM_LENGTH: 'This address is longer than this site accepts.'
}

function messageOf (error: FastifyError, status: number): string {
  if (status >= 500) return 'The server failed to answer this request. It has been logged.'
  if (MESSAGES[error.code] !== undefined) return MESSAGES[error.code] as string
  if (error.validation !== undefined) return 'Some of what was sent is not valid: ' + error.message
  if (status === 429) return 'Too many attempts. Wait a minute, then try again.'
  return error.message
}

/** Answers with the blog's HTML error page, or in plain text when even that fails. */
export async function sendErrorPage (error: FastifyError, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const status = typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 600
    ? error.statusCode
    : 500
  if (status >= 500) request.log.error({ err: error }, 'request failed')
  else request.log.info({ code: error.code, status, message: error.message }, 'request rejected')
  try {
    return await request.server.sendPage(reply, 'error.njk', {
      title: TITLES[status] ?? TITLES[status >= 500 ? 500 : 400], status, message: messageOf(error, status)
    }, status)
  } catch (renderError) {
    // The error page itself failed (a broken template): still answer, in plain text.
    request.log.error({ err: renderError }, 'error page failed to render')
    return await reply.code(status).type('text/plain; charset=utf-8').send(`${status} ${TITLES[status] ?? 'Error'}\n`)
  }
}

/**
 * Fastify's `frameworkErrors` server option: errors raised before routing (a malformed URL such as `/ab%C0%AFout`,
 * an over-long parameter), which no hook or error handler sees. They get the same page and headers as any other.
 */
export function frameworkErrors (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  setSecurityHeaders(reply)
  sendErrorPage(error, request, reply).catch((err: unknown) => { request.log.error({ err }, 'framework error page failed') })
}

/** HTML error pages for every error, 404 included. None of them is ever cached: only 200s are stored. */
export default fp(async function errorPages (fastify: FastifyInstance) {
  fastify.setNotFoundHandler(async (request, reply) => {
    return await reply.page('error.njk', {
      title: TITLES[404], status: 404, message: `There is nothing at ${request.url.split('?')[0]}.`
    }, 404)
  })

  fastify.setErrorHandler(sendErrorPage)
}, { fastify: '5.x', name: 'blog-errors', dependencies: ['blog-view'] })
