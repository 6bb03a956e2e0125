/**
 * The page every synthetic case serves: about 4 KB of plain HTML, the same bytes whether it comes from a constant,
 * from Redis or from a cache library, so each case differs only in how it gets them.
 */
export const PAGE_BYTES_TARGET = 4096

function buildPage (): string {
  const head = '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n' +
    '<title>fastify-cache bench</title>\n<link rel="stylesheet" href="/style.css">\n</head>\n<body>\n<main>\n'
  const tail = '</main>\n<footer>fastify-cache bench page</footer>\n</body>\n</html>\n'
  let body = ''
  for (let i = 1; ; i++) {
    const article = `<article class="preview"><h2><a href="/post/${i}">Post number ${i}</a></h2>` +
      `<p>Paragraph ${i} of the benchmark page, long enough to look like a preview of a real post.</p></article>\n`
    if (head.length + body.length + article.length + tail.length > PAGE_BYTES_TARGET - 16) break
    body += article
  }
  // Pad to the exact size with a comment, so the page stays well-formed HTML.
  const pad = PAGE_BYTES_TARGET - head.length - body.length - tail.length - '<!--  -->\n'.length
  return head + body + '<!-- ' + '.'.repeat(Math.max(0, pad)) + ' -->\n' + tail
}

export const PAGE = buildPage()
export const PAGE_BUFFER = Buffer.from(PAGE)
export const CONTENT_TYPE = 'text/html; charset=utf-8'

/**
 * The page of the content-coding cases: 50 KiB of HTML as a news site's front page would be, forty-odd article
 * previews with varied text. The text comes from a seeded generator, so every process (servers and orchestrator)
 * builds the same bytes, and compresses about as real prose does: repeated words and markup, not a repeated block.
 */
export const LARGE_PAGE_BYTES_TARGET = 50 * 1024

const WORDS = ('cache redis fastify request response header latency memory server client browser page route ' +
  'compression brotli gzip network bytes throughput cluster replica primary failover timeout retry queue worker ' +
  'deploy release version upgrade migration schema index query table column database transaction commit rollback ' +
  'session cookie token login account profile settings dashboard metrics trace span log alert incident review ' +
  'the a of to and in for on with by from at as is was are were be been has have had it its this that these ' +
  'which when where while after before during between under over about into through without within across ' +
  'fast slow small large early late first last new old simple careful quiet busy shared local remote stable').split(' ')
const AUTHORS = ['Ada Moreau', 'Bo Lindqvist', 'Chiara Bellini', 'Dmitri Sokolov', 'Eun-ji Park', 'Farah Haddad', 'Gustavo Ramos']
const SECTIONS = ['engineering', 'operations', 'product', 'security', 'community', 'releases']

/** mulberry32: a tiny seeded generator, enough for text that is the same in every process. */
function seeded (seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6D2B79F5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function previewOf (i: number, random: () => number): string {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T
  const words = (n: number): string => Array.from({ length: n }, () => pick(WORDS)).join(' ')
  const title = words(4 + Math.floor(random() * 5))
  const slug = title.replace(/ /g, '-')
  const section = pick(SECTIONS)
  const day = 1 + Math.floor(random() * 28)
  const tags = Array.from({ length: 2 + Math.floor(random() * 3) }, () => pick(WORDS))
  return `<article class="preview preview--${section}" id="post-${i}">\n` +
    `  <a class="preview__image" href="/${section}/${slug}"><img src="/img/${i}-640.webp" ` +
    `srcset="/img/${i}-320.webp 320w, /img/${i}-640.webp 640w" sizes="(max-width: 600px) 100vw, 320px" ` +
    `alt="${words(3)}" loading="lazy" width="320" height="180"></a>\n` +
    `  <h2 class="preview__title"><a href="/${section}/${slug}">${title[0]?.toUpperCase() ?? ''}${title.slice(1)}</a></h2>\n` +
    `  <p class="preview__meta">By <a href="/authors/${i % AUTHORS.length}">${pick(AUTHORS)}</a> &middot; ` +
    `<time datetime="2024-03-${String(day).padStart(2, '0')}">March ${day}, 2024</time> &middot; ${3 + Math.floor(random() * 12)} min read</p>\n` +
    `  <p class="preview__excerpt">${words(40 + Math.floor(random() * 30))}.</p>\n` +
    `  <ul class="preview__tags">${tags.map((tag) => `<li><a href="/tags/${tag}">#${tag}</a></li>`).join('')}</ul>\n` +
    '</article>\n'
}

function buildLargePage (): string {
  const nav = SECTIONS.map((section) => `<li><a href="/${section}">${section}</a></li>`).join('')
  const head = '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n' +
    '<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>fastify-cache bench: front page</title>\n' +
    '<link rel="stylesheet" href="/assets/site.css">\n<link rel="alternate" type="application/rss+xml" href="/feed.xml">\n' +
    `</head>\n<body>\n<header class="site-header"><a class="logo" href="/">bench news</a><nav><ul>${nav}</ul></nav></header>\n` +
    '<main class="front">\n'
  const tail = '</main>\n<footer class="site-footer"><p>fastify-cache bench page, 50 KiB</p></footer>\n' +
    '<script src="/assets/site.js" defer></script>\n</body>\n</html>\n'
  const random = seeded(20240301)
  let body = ''
  for (let i = 1; ; i++) {
    const article = previewOf(i, random)
    if (head.length + body.length + article.length + tail.length > LARGE_PAGE_BYTES_TARGET - 16) break
    body += article
  }
  // Pad to the exact size with a comment, as the 4 KB page does (ASCII only, so characters are bytes).
  const pad = LARGE_PAGE_BYTES_TARGET - head.length - body.length - tail.length - '<!--  -->\n'.length
  return head + body + '<!-- ' + '.'.repeat(Math.max(0, pad)) + ' -->\n' + tail
}

export const LARGE_PAGE = buildLargePage()
export const LARGE_PAGE_BUFFER = Buffer.from(LARGE_PAGE)
