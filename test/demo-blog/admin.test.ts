import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { redisForTest } from '../helpers/redis.js'
import { admin, buildBlog, csrfOf, Visitor } from './fixtures/blog.js'

const redis = await redisForTest(t)

/** Reads every page once as an anonymous reader and checks that the next read is a HIT. */
async function warm (t: Test, reader: Visitor, urls: string[]): Promise<void> {
  for (const url of urls) {
    await reader.get(url)
    t.equal((await reader.get(url)).headers['x-cache'], 'HIT', `${url} is cached before the change`)
  }
}

async function createPost (editor: Visitor, form: Record<string, string>): Promise<{ status: number, location?: string }> {
  const _csrf = await editor.csrfFrom('/admin/post/new')
  const response = await editor.post('/admin/post', { _csrf, ...form })
  return { status: response.statusCode, location: response.headers.location as string | undefined }
}

function newestId (app: FastifyInstance): number {
  return Math.max(...app.posts.listAll().map((post) => post.id))
}

t.test('the admin pages: list, new, edit', async (t) => {
  const app = await buildBlog(t, redis)
  const editor = await admin(app)
  const list = await editor.get('/admin')
  t.equal(list.statusCode, 200)
  t.notOk(list.headers['x-cache'], 'admin pages are not cache routes')
  t.equal([...list.body.matchAll(/action="\/admin\/post\/\d+\/delete"/g)].length, 5, 'every post, drafts too, with delete')
  t.match(list.body, /href="\/admin\/post\/1\/edit"/)
  const newForm = await editor.get('/admin/post/new')
  t.match(newForm.body, /action="\/admin\/post"/)
  t.match(newForm.body, /name="title"/)
  t.match(newForm.body, /name="body"/)
  t.match(newForm.body, /type="checkbox" id="published" name="published"/)
  t.match(newForm.body, /name="_csrf"/)
  const edit = await editor.get('/admin/post/1/edit')
  t.match(edit.body, /value="利用Redis做Flask緩存後端"/, 'the form is filled')
  t.match(edit.body, /action="\/admin\/post\/1\/edit"/)
  t.equal((await editor.get('/admin/post/999/edit')).statusCode, 404)
  t.equal((await editor.get('/admin/post/abc/edit')).statusCode, 400)
  for (const page of [list, newForm, edit]) {
    t.notMatch(String(page.headers['cache-control'] ?? ''), /public/, 'never publicly cacheable')
  }
})

t.test('a new post is on the very next anonymous index, even though the index was cached', async (t) => {
  const app = await buildBlog(t, redis)
  const reader = new Visitor(app)
  const editor = await admin(app)
  await warm(t, reader, ['/', '/?page=1'])

  const created = await createPost(editor, { title: 'Fresh from the oven', body: 'Hello **world**', published: 'on' })
  t.same(created, { status: 302, location: '/admin' })
  const id = newestId(app)
  t.equal(app.posts.get(id)?.published, true)

  for (const url of ['/', '/?page=1']) {
    const index = await reader.get(url)
    t.not(index.headers['x-cache'], 'HIT', `${url} was purged`)
    t.match(index.body, /Fresh from the oven/, `${url} lists the new post`)
  }
  const post = await reader.get(`/post/${id}`)
  t.equal(post.statusCode, 200)
  t.match(post.body, /Hello <strong>world<\/strong>/)
  t.match((await editor.get('/admin')).body, /Created “Fresh from the oven”/, 'the admin is told')
})

t.test('a new draft stays invisible to readers', async (t) => {
  const app = await buildBlog(t, redis)
  const reader = new Visitor(app)
  const editor = await admin(app)
  const created = await createPost(editor, { title: 'Secret plans', body: 'Not yet' })
  t.equal(created.status, 302)
  const id = newestId(app)
  t.equal(app.posts.get(id)?.published, false, 'an unticked checkbox is a draft')
  t.notMatch((await reader.get('/')).body, /Secret plans/)
  t.equal((await reader.get(`/post/${id}`)).statusCode, 404)
  t.equal((await editor.get(`/post/${id}`)).statusCode, 200, 'the admin can preview it')
})

t.test('an edit is on the very next anonymous read of the index and of the post', async (t) => {
  const app = await buildBlog(t, redis)
  const reader = new Visitor(app)
  const editor = await admin(app)
  await warm(t, reader, ['/', '/post/3', '/about'])

  const _csrf = await editor.csrfFrom('/admin/post/3/edit')
  const response = await editor.post('/admin/post/3/edit', {
    _csrf, title: 'Purge after commit, revised', body: 'Edited body', published: 'on'
  })
  t.equal(response.statusCode, 302)
  t.equal(response.headers.location, '/admin')

  const index = await reader.get('/')
  t.not(index.headers['x-cache'], 'HIT')
  t.match(index.body, /Purge after commit, revised/)
  t.notMatch(index.body, /Why the purge comes after the commit/, 'no stale title')
  const post = await reader.get('/post/3')
  t.not(post.headers['x-cache'], 'HIT')
  t.match(post.body, /Edited body/)
  t.notMatch(post.body, /Flask post deleted the index/, 'no stale body')
  t.equal((await reader.get('/about')).headers['x-cache'], 'HIT', 'unrelated pages stay cached')
  t.equal((await reader.get('/post/3')).headers['x-cache'], 'HIT', 'and the new version is cached again')
})

t.test('the index tags itself with the posts it lists: their tags purge it, a draft\'s does not', async (t) => {
  const app = await buildBlog(t, redis)
  const reader = new Visitor(app)
  await warm(t, reader, ['/', '/about'])
  t.equal(await app.cache.invalidateTags(['post:5']), 0, 'the draft is on no page')
  t.equal((await reader.get('/')).headers['x-cache'], 'HIT', 'so the index stays')
  t.equal(await app.cache.invalidateTags(['post:2']), 1, 'a listed post\'s tag reaches the index')
  t.equal((await reader.get('/')).headers['x-cache'], 'MISS')
  t.equal((await reader.get('/about')).headers['x-cache'], 'HIT', 'and nothing else')
})

t.test('an edit of a draft leaves every cached page alone: the index no longer goes on every edit', async (t) => {
  const app = await buildBlog(t, redis)
  const reader = new Visitor(app)
  const editor = await admin(app)
  t.equal(app.posts.get(5)?.published, false, 'post 5 is the seed\'s draft')
  await warm(t, reader, ['/', '/?page=1', '/post/3', '/about'])
  const _csrf = await editor.csrfFrom('/admin/post/5/edit')
  const response = await editor.post('/admin/post/5/edit', { _csrf, title: 'Still a draft', body: 'Not yet' })
  t.equal(response.statusCode, 302)
  t.equal(app.posts.get(5)?.title, 'Still a draft', 'committed')
  for (const url of ['/', '/?page=1', '/post/3', '/about']) t.equal((await reader.get(url)).headers['x-cache'], 'HIT', `${url} stays cached`)
  t.notMatch((await reader.get('/')).body, /Still a draft/)
})

t.test('publishing a draft puts it on the very next anonymous index', async (t) => {
  const app = await buildBlog(t, redis)
  const reader = new Visitor(app)
  const editor = await admin(app)
  await warm(t, reader, ['/', '/?page=1', '/about'])
  const _csrf = await editor.csrfFrom('/admin/post/5/edit')
  const response = await editor.post('/admin/post/5/edit', { _csrf, title: 'Out of the drawer', body: 'Published now', published: 'on' })
  t.equal(response.statusCode, 302)
  for (const url of ['/', '/?page=1']) {
    const index = await reader.get(url)
    t.not(index.headers['x-cache'], 'HIT', `${url} was purged: the post was on no page, so no tag reached it`)
    t.match(index.body, /Out of the drawer/)
  }
  t.equal((await reader.get('/about')).headers['x-cache'], 'HIT', 'unrelated pages stay cached')
  t.equal((await reader.get('/post/5')).statusCode, 200)
})

t.test('unpublishing a cached post makes it a 404 at once', async (t) => {
  const app = await buildBlog(t, redis)
  const reader = new Visitor(app)
  const editor = await admin(app)
  await warm(t, reader, ['/', '/post/2'])
  const _csrf = await editor.csrfFrom('/admin/post/2/edit')
  const response = await editor.post('/admin/post/2/edit', { _csrf, title: 'Back to draft', body: 'Hidden' })
  t.equal(response.statusCode, 302)
  t.equal((await reader.get('/post/2')).statusCode, 404)
  t.notMatch((await reader.get('/')).body, /Back to draft|line by line/)
})

t.test('a delete is on the very next anonymous read of the index and of the post', async (t) => {
  const app = await buildBlog(t, redis)
  const reader = new Visitor(app)
  const editor = await admin(app)
  await warm(t, reader, ['/', '/post/4'])
  t.match((await reader.get('/')).body, /What the cache dashboard shows/)

  const list = await editor.get('/admin')
  const response = await editor.post('/admin/post/4/delete', { _csrf: csrfOf(list.body) })
  t.equal(response.statusCode, 302)
  t.equal(app.posts.get(4), undefined, 'the row is gone')
  t.notMatch((await reader.get('/')).body, /What the cache dashboard shows/, 'gone from the index')
  const post = await reader.get('/post/4')
  t.equal(post.statusCode, 404, 'the post page is a 404')
  t.equal((await reader.get('/post/4')).headers['x-cache'], 'BYPASS', 'and the 404 is not cached')
  const again = await editor.post('/admin/post/4/delete', { _csrf: csrfOf(list.body) })
  t.equal(again.statusCode, 404, 'deleting it twice is a 404')
})

t.test('bad forms give 400 or 403 pages, never a 500, and store nothing', async (t) => {
  const app = await buildBlog(t, redis)
  const reader = new Visitor(app)
  const editor = await admin(app)
  await warm(t, reader, ['/', '/post/1'])
  const before = JSON.stringify(app.posts.listAll())
  const _csrf = await editor.csrfFrom('/admin/post/new')

  const cases: Array<[string, string, Record<string, string | string[]>, number, RegExp]> = [
    ['missing title', '/admin/post', { _csrf, body: 'text' }, 400, /The title is required/],
    ['blank title', '/admin/post', { _csrf, title: '   ', body: 'text' }, 400, /The title is required/],
    ['missing body', '/admin/post', { _csrf, title: 'A title' }, 400, /The body is required/],
    ['body over 100 KB', '/admin/post', { _csrf, title: 'Big', body: 'x'.repeat(100 * 1024 + 1) }, 400, /larger than 100 KB/],
    ['body over 100 KB in UTF-8', '/admin/post', { _csrf, title: 'Big', body: '緩'.repeat(40_000) }, 400, /larger than 100 KB/],
    ['title too long', '/admin/post', { _csrf, title: 't'.repeat(201), body: 'text' }, 400, /longer than 200/],
    ['repeated field', '/admin/post', { _csrf, title: ['a', 'b'], body: 'text' }, 400, /Bad request/],
    ['bad CSRF token', '/admin/post', { _csrf: 'forged', title: 'Evil', body: 'text' }, 403, /Forbidden/],
    ['no CSRF token', '/admin/post', { title: 'Evil', body: 'text' }, 403, /Forbidden/],
    ['edit, missing title', '/admin/post/1/edit', { _csrf, body: 'text' }, 400, /The title is required/],
    ['edit, bad CSRF token', '/admin/post/1/edit', { _csrf: 'forged', title: 'Evil', body: 'text' }, 403, /Forbidden/],
    ['delete, bad CSRF token', '/admin/post/1/delete', { _csrf: 'forged' }, 403, /Forbidden/]
  ]
  for (const [name, url, form, status, message] of cases) {
    const response = await editor.post(url, form)
    t.equal(response.statusCode, status, `${name}: ${status}`)
    t.match(response.headers['content-type'], /^text\/html/, `${name}: an HTML page`)
    t.match(response.body, message, `${name}: says what is wrong`)
  }
  const keptText = await editor.post('/admin/post', { _csrf, title: '', body: 'my long draft' })
  t.match(keptText.body, />my long draft<\/textarea>/, 'the form comes back with what was typed')

  const huge = await editor.post('/admin/post', { _csrf, title: 'Huge', body: 'x'.repeat(2 * 1024 * 1024) })
  t.equal(huge.statusCode, 413, 'a request past the body limit is refused before parsing')
  t.match(huge.body, /Too large/)

  t.equal(JSON.stringify(app.posts.listAll()), before, 'the database is unchanged')
  t.equal((await reader.get('/')).headers['x-cache'], 'HIT', 'the cached index was not touched')
  t.equal((await reader.get('/post/1')).headers['x-cache'], 'HIT', 'nor the post')
})

t.test('the cache dashboard: stats, chart, keys with TTLs, purge one, purge all', async (t) => {
  const app = await buildBlog(t, redis)
  const reader = new Visitor(app)
  const editor = await admin(app)
  await warm(t, reader, ['/', '/about', '/post/1'])
  app.sampleCacheStats()

  const page = await editor.get('/admin/cache')
  t.equal(page.statusCode, 200)
  t.notOk(page.headers['x-cache'], 'never cached')
  t.match(page.body, /<dd id="store-kind">redis<\/dd>/)
  t.match(page.body, /<dd id="hits">3<\/dd>/)
  t.match(page.body, /<dd id="misses">3<\/dd>/)
  t.match(page.body, /<dd id="hit-ratio">50\.0%<\/dd>/)
  t.match(page.body, /<dd id="breaker" class="breaker-closed">closed<\/dd>/)
  t.match(page.body, /<svg [^>]*class="chart"/, 'a server-rendered chart')
  t.match(page.body, /<circle class="point"|<polyline class="ratio"/, 'with the sampled ratio on it')
  for (const key of ['view//', 'view//about', 'view//post/1']) {
    t.match(page.body, `<code>${key}</code>`, `lists ${key}`)
    t.match(page.body, `<input type="hidden" name="key" value="${key}">`, `with a purge button for ${key}`)
  }
  t.match(page.body, /<td>1h 59m<\/td>|<td>2h 00m<\/td>/, 'the about page expires in about two hours')
  t.match(page.body, /action="\/admin\/cache\/clear"/)

  const _csrf = csrfOf(page.body)
  const forged = await editor.post('/admin/cache/purge', { _csrf: 'forged', key: 'view//about' })
  t.equal(forged.statusCode, 403)
  t.ok(await app.cache.has('view//about'), 'a forged purge does nothing')

  const purged = await editor.post('/admin/cache/purge', { _csrf, key: 'view//about' })
  t.equal(purged.statusCode, 302)
  t.equal(purged.headers.location, '/admin/cache')
  t.notOk(await app.cache.has('view//about'), 'purged one key')
  t.ok(await app.cache.has('view//'), 'and only that one')
  t.equal((await reader.get('/about')).headers['x-cache'], 'MISS')
  t.match((await editor.get('/admin/cache')).body, /Purged view\/\/about/)

  // Something outside the blog's prefix on the same Redis must survive "purge everything".
  await app.redis.set(`${redis.prefix}outside`, 'keep me')
  t.teardown(async () => { await app.redis.del(`${redis.prefix}outside`) })
  const cleared = await editor.post('/admin/cache/clear', { _csrf })
  t.equal(cleared.statusCode, 302)
  t.same(await app.cache.keys(), [], 'everything under the prefix is gone')
  t.equal(await app.redis.get(`${redis.prefix}outside`), 'keep me', 'nothing else was touched')
  t.equal((await reader.get('/')).headers['x-cache'], 'MISS')
  t.match((await editor.get('/admin/cache')).body, /Cleared the cache: \d+ keys? removed/)
})

t.test('the dashboard works on the memory store too', async (t) => {
  const app = await buildBlog(t, undefined)
  const editor = await admin(app)
  await new Visitor(app).get('/about')
  const page = await editor.get('/admin/cache')
  t.match(page.body, /<dd id="store-kind">memory<\/dd>/)
  t.match(page.body, /<code>view\/\/about<\/code>/)
  t.match(page.body, /no lookups yet|class="point"|class="ratio"/)
})
