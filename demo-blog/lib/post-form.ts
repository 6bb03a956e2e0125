import type { PostInput } from '../db/repository.js'

export const MAX_TITLE_CHARS = 200
/** Largest markdown body accepted, in UTF-8 bytes. */
export const MAX_BODY_BYTES = 100 * 1024

/** What the post form sends, before validation; the route schema guarantees strings (or nothing). */
export interface PostFormFields {
  title?: string
  body?: string
  published?: string
  _csrf?: string
}

/** Route schema: only the shapes (a repeated field would arrive as an array). The rules are in validatePostForm. */
export const postFormSchema = {
  type: 'object',
  properties: {
    title: { type: 'string' },
    body: { type: 'string' },
    published: { type: 'string' },
    _csrf: { type: 'string' }
  }
} as const

export type PostFormResult = { ok: true, value: PostInput } | { ok: false, errors: string[], value: PostInput }

export function validatePostForm (fields: PostFormFields | undefined): PostFormResult {
  const title = (fields?.title ?? '').trim()
  const body = (fields?.body ?? '').replace(/\r\n/g, '\n')
  // An HTML checkbox is sent (as "on") when ticked and left out when not.
  const published = fields?.published !== undefined && fields.published !== '' && fields.published !== 'false'
  const value = { title, body, published }
  const errors: string[] = []
  if (title === '') errors.push('The title is required.')
  else if (title.length > MAX_TITLE_CHARS) errors.push(`The title is longer than ${MAX_TITLE_CHARS} characters.`)
  if (body.trim() === '') errors.push('The body is required.')
  else if (Buffer.byteLength(body) > MAX_BODY_BYTES) {
    errors.push(`The body is larger than ${MAX_BODY_BYTES / 1024} KB.`)
  }
  return errors.length === 0 ? { ok: true, value } : { ok: false, errors, value }
}
