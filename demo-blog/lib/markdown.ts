import { Marked } from 'marked'
import sanitizeHtml from 'sanitize-html'

const marked = new Marked({ gfm: true, async: false })

// Markdown may carry raw HTML: everything marked produces goes through an allow-list. No scripts, no event
// handler attributes (none are allowed), and links only to http(s) and mailto.
const SANITIZE: sanitizeHtml.IOptions = {
  allowedTags: [...sanitizeHtml.defaults.allowedTags, 'img', 'h1', 'h2', 'del', 'input'],
  allowedAttributes: {
    a: ['href', 'title', 'rel'],
    img: ['src', 'alt', 'title', 'width', 'height'],
    code: ['class'],
    th: ['align'],
    td: ['align'],
    ol: ['start'],
    // GFM task lists
    input: ['type', 'checked', 'disabled']
  },
  allowedClasses: { code: [/^language-[\w-]+$/] },
  allowedSchemes: ['http', 'https', 'mailto'],
  allowedSchemesByTag: { img: ['http', 'https'] },
  allowProtocolRelative: false,
  transformTags: {
    a: sanitizeHtml.simpleTransform('a', { rel: 'nofollow noopener noreferrer' }),
    input: (tagName, attribs) => ({ tagName, attribs: { ...attribs, type: 'checkbox', disabled: '' } })
  }
}

/** Markdown to HTML that is safe to insert unescaped. */
export function renderMarkdown (markdown: string): string {
  return sanitizeHtml(marked.parse(markdown) as string, SANITIZE)
}

/** A plain-text preview of a post (the template escapes it): its rendered text, cut on a word boundary. */
export function previewOf (markdown: string, maxChars = 280): string {
  // Code blocks and tables read badly as running text: the preview is the prose around them.
  const text = sanitizeHtml(marked.parse(markdown) as string, {
    allowedTags: [], allowedAttributes: {}, nonTextTags: ['script', 'style', 'textarea', 'option', 'noscript', 'pre', 'table']
  })
    .replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ').trim()
  if (text.length <= maxChars) return text
  const cut = text.slice(0, maxChars)
  const space = cut.lastIndexOf(' ')
  return (space > maxChars * 0.6 ? cut.slice(0, space) : cut) + '…'
}

/** An ASCII slug for display and admin lists; titles without Latin letters fall back to `post`. */
export function slugify (title: string): string {
  const slug = title.normalize('NFKD').replace(/[\u0300-\u036f]/g, '').toLowerCase()
    .replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 80).replace(/-+$/, '')
  return slug === '' ? 'post' : slug
}
