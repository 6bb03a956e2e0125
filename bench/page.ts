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
