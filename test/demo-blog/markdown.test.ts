import t, { type Test } from 'tap'
import { previewOf, renderMarkdown, slugify } from '../../demo-blog/lib/markdown.js'
import { redisForTest } from '../helpers/redis.js'
import { admin, buildBlog, Visitor } from './fixtures/blog.js'

const ATTACKS = [
  '<script>alert(1)</script>',
  '<SCRIPT SRC=//evil.example/x.js></SCRIPT>',
  '[click](javascript:alert(1))',
  '[click](JaVaScRiPt:alert(1))',
  '[click](&#106;avascript:alert(1))',
  '<a href="javascript:alert(1)">raw link</a>',
  '![x](javascript:alert(1))',
  '<img src=x onerror=alert(1)>',
  '<img src="https://example.org/a.png" onerror="alert(1)">',
  '<p onclick="alert(1)" style="color:red">hi</p>',
  '<iframe src="https://evil.example"></iframe>',
  '<svg onload=alert(1)><circle r=1 /></svg>',
  '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">data</a>',
  '<form action="https://evil.example"><input name=x></form>',
  '<style>body{display:none}</style>',
  '<object data="x.swf"></object>'
]

/**
 * No executable markup. Quoted attribute values are blanked before looking for attributes, so escaped text such as
 * `value="&lt;img onerror=…&gt;"` (harmless, and shown on purpose) is not mistaken for an attribute.
 */
function assertSafe (t: Test, html: string, label: string, { formsAllowed = false } = {}): void {
  const tags = html.replace(/"[^"]*"/g, '""')
  t.notMatch(html, /<script/i, `${label}: no script`)
  t.notMatch(html, /=\s*["']?\s*javascript:/i, `${label}: no javascript: URL`)
  t.notMatch(tags, /<[^>]*\son[a-z]+\s*=/i, `${label}: no on* attribute`)
  t.notMatch(tags, /<[^>]*\sstyle\s*=/i, `${label}: no inline style`)
  t.notMatch(html, formsAllowed ? /<(iframe|object|svg|style)\b/i : /<(iframe|object|svg|style|form)\b/i,
    `${label}: no active elements`)
  t.notMatch(html, /href\s*=\s*["']?data:/i, `${label}: no data: link`)
}

t.test('renderMarkdown neutralises script, javascript: links and event handlers', async (t) => {
  for (const attack of ATTACKS) assertSafe(t, renderMarkdown(attack), attack)
  t.match(renderMarkdown('<img src="https://example.org/a.png" onerror="alert(1)">'), '<img src="https://example.org/a.png" />',
    'the harmless part of an element survives')
})

t.test('renderMarkdown keeps ordinary markdown', async (t) => {
  t.equal(renderMarkdown('# Title').trim(), '<h1>Title</h1>')
  t.match(renderMarkdown('**bold** and `code`'), '<strong>bold</strong> and <code>code</code>')
  t.match(renderMarkdown('[site](https://example.org)'),
    '<a href="https://example.org" rel="nofollow noopener noreferrer">site</a>', 'http(s) links, with rel')
  t.match(renderMarkdown('[mail](mailto:a@example.org)'), 'href="mailto:a@example.org"')
  t.match(renderMarkdown('```ts\nconst a = 1 < 2\n```'), '<pre><code class="language-ts">const a = 1 &lt; 2')
  t.match(renderMarkdown('| a | b |\n|---|---|\n| 1 | 2 |'), '<td>1</td>')
  t.match(renderMarkdown('> 引用'), '<blockquote>')
  t.match(renderMarkdown('- [x] done'), /<input (?=.*type="checkbox")(?=.*checked)(?=.*disabled)/, 'task lists, disabled')
})

t.test('previewOf: plain text, cut on a word', async (t) => {
  t.equal(previewOf('# Hello\n\nSome *text* & <b>more</b>'), 'Hello Some text & more')
  const long = previewOf('word '.repeat(200), 50)
  t.ok(long.length <= 51, 'cut near the limit')
  t.ok(long.endsWith('…'))
  t.notMatch(long, /wor…$/, 'not in the middle of a word')
  t.equal(previewOf('<script>alert(1)</script>visible'), 'visible', 'scripts are not text')
  t.equal(previewOf('Intro.\n\n    code()\n\n| a |\n|---|\n| 1 |\n\nOutro.'), 'Intro. Outro.', 'no code blocks or tables')
  t.equal(previewOf('a &lt;b&gt; c'), 'a <b> c', 'the template escapes it, so entities are decoded once')
})

t.test('slugify', async (t) => {
  t.equal(slugify('Why the purge comes after the commit'), 'why-the-purge-comes-after-the-commit')
  t.equal(slugify('Crème brûlée!'), 'creme-brulee')
  t.equal(slugify('利用Redis做Flask緩存後端'), 'redis-flask')
  t.equal(slugify('緩存'), 'post', 'no Latin letters: a fallback')
})

t.test('a post written with XSS in its markdown is served neutralised, to readers and to the admin', async (t) => {
  const redis = await redisForTest(t)
  const app = await buildBlog(t, redis)
  const editor = await admin(app)
  const _csrf = await editor.csrfFrom('/admin/post/new')
  const title = '<img src=x onerror=alert("title")>'
  const response = await editor.post('/admin/post', { _csrf, title, body: ATTACKS.join('\n\n'), published: 'on' })
  t.equal(response.statusCode, 302)
  const id = Math.max(...app.posts.listAll().map((post) => post.id))

  const reader = new Visitor(app)
  for (const [label, page] of [
    ['post', await reader.get(`/post/${id}`)],
    ['cached post', await reader.get(`/post/${id}`)],
    ['index', await reader.get('/')],
    ['admin post', await editor.get(`/post/${id}`)],
    ['admin list', await editor.get('/admin')],
    ['edit form', await editor.get(`/admin/post/${id}/edit`)]
  ] as const) {
    t.equal(page.statusCode, 200, `${label}: 200`)
    const main = page.body.slice(page.body.indexOf('<main>'), page.body.indexOf('</main>'))
    assertSafe(t, main, label, { formsAllowed: label.startsWith('admin') || label === 'edit form' })
  }
  const post = await reader.get(`/post/${id}`)
  t.match(post.body, '<h1>&lt;img src=x onerror=alert(&quot;title&quot;)&gt;', 'the title is escaped text')
  const form = await editor.get(`/admin/post/${id}/edit`)
  t.match(form.body, '&lt;script&gt;alert(1)&lt;/script&gt;', 'the edit form shows the markdown as text')
})
