import { existsSync, mkdirSync, statSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { chromium, type Page } from 'playwright-core'
import t from 'tap'
import { redisForTest } from '../helpers/redis.js'
import { ADMIN_PASSWORD, ADMIN_USER, buildBlog } from '../demo-blog/fixtures/blog.js'

const OUTPUT = fileURLToPath(new URL('../../test-output/', import.meta.url))

const CHROMIUM = '/usr/bin/chromium'
// A failure that says what to do, not playwright's; the test is never skipped.
if (!existsSync(CHROMIUM)) throw new Error(`the browser test needs Debian's chromium at ${CHROMIUM}: apt-get install chromium`)

const redis = await redisForTest(t)
const app = await buildBlog(t, redis)
const base = (await app.listen({ host: '127.0.0.1', port: 0 })).replace(/\/$/, '')

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync']
})
t.teardown(async () => await browser.close())

/** The admin's browser. */
const adminContext = await browser.newContext()
const page = await adminContext.newPage()
/** A reader's browser: its own cookies, so never logged in. */
const readerContext = await browser.newContext()
const reader = await readerContext.newPage()

async function titlesOn (tab: Page): Promise<string[]> {
  return await tab.locator('article.preview h2 a').allTextContents()
}

async function logIn (): Promise<void> {
  await page.goto(base + '/login')
  await page.fill('#username', ADMIN_USER)
  await page.fill('#password', ADMIN_PASSWORD)
  await Promise.all([page.waitForURL(base + '/admin'), page.click('form.stacked button[type=submit]')])
}

async function logOut (): Promise<void> {
  await Promise.all([page.waitForURL(base + '/'), page.click('#admin-bar button:has-text("Log out")')])
}

t.test('a person reads, logs in, writes, edits and deletes a post, then opens the dashboard', async (t) => {
  // Open the index, as anyone would: computed once, then served from the cache.
  const first = await page.goto(base + '/')
  t.equal(first?.status(), 200)
  t.equal(first?.headers()['x-cache'], 'MISS')
  t.equal((await page.reload())?.headers()['x-cache'], 'HIT', 'a reload is served from the cache')
  // The dashboard samples every 10 s; the test takes its samples at chosen moments instead.
  app.sampleCacheStats()
  t.same((await titlesOn(page)).slice(0, 2), ['What the cache dashboard shows', 'Why the purge comes after the commit'])
  t.equal(await page.locator('#admin-bar').count(), 0, 'no admin bar for a reader')
  t.equal(await page.locator('link[rel=stylesheet]').evaluate((link) => (link as unknown as { sheet: unknown }).sheet !== null), true,
    'the stylesheet loaded')

  // Read a post.
  await Promise.all([page.waitForURL(/\/post\/\d+$/), page.click('text=Why the purge comes after the commit')])
  t.equal(await page.locator('article.post h1').textContent(), 'Why the purge comes after the commit')
  t.match(await page.locator('article.post .body').innerHTML(), /<em>before<\/em>/, 'markdown rendered')

  // Log in through the link in the header.
  await page.goto(base + '/')
  await Promise.all([page.waitForURL(base + '/login'), page.click('header.site >> text=Log in')])
  await page.fill('#username', ADMIN_USER)
  await page.fill('#password', 'not the password')
  await page.click('form.stacked button[type=submit]')
  t.match(await page.locator('[role=alert]').textContent(), /Wrong username or password/, 'a wrong password is refused')
  await logIn()
  t.ok(await page.locator('#admin-bar').isVisible(), 'the admin bar once logged in')
  const home = await page.goto(base + '/')
  t.equal(home?.headers()['x-cache'], 'BYPASS', 'the admin skips the cache')

  // Write a post in the form.
  await page.goto(base + '/admin')
  await Promise.all([page.waitForURL(base + '/admin/post/new'), page.click('text=Write a post')])
  await page.fill('#title', 'Written in a real browser')
  await page.fill('#body', 'Typed by **Chromium**, with a [link](https://fastify.dev).')
  await page.check('#published')
  await Promise.all([page.waitForURL(base + '/admin'), page.click('form.stacked button[type=submit]')])
  t.match(await page.locator('.flash').textContent(), /Created “Written in a real browser”/)

  // Log out: the index shows the new post at once.
  await logOut()
  t.equal(await page.locator('#admin-bar').count(), 0, 'no admin bar after logging out')
  t.equal((await titlesOn(page))[0], 'Written in a real browser', 'the new post tops the index')
  const readerIndex = await reader.goto(base + '/')
  t.equal((await titlesOn(reader))[0], 'Written in a real browser', 'another reader sees it too')
  t.equal(readerIndex?.headers()['x-cache'], 'HIT', '(from the cache, refilled after the purge)')
  app.sampleCacheStats()
  mkdirSync(OUTPUT, { recursive: true })
  await page.screenshot({ path: OUTPUT + 'index.png', fullPage: true })

  // Edit it.
  await logIn()
  const row = page.locator('tr', { hasText: 'Written in a real browser' })
  await Promise.all([page.waitForURL(/\/admin\/post\/\d+\/edit$/), row.locator('text=Edit').click()])
  const id = /\/admin\/post\/(\d+)\/edit$/.exec(page.url())?.[1]
  t.ok(id, 'the edit page names the post')
  const postPage = await reader.goto(`${base}/post/${id ?? ''}`)
  t.equal(postPage?.status(), 200)
  t.equal((await reader.reload())?.headers()['x-cache'], 'HIT', 'the reader has the post cached')
  await page.fill('#title', 'Edited in a real browser')
  await page.fill('#body', 'The second version.')
  await Promise.all([page.waitForURL(base + '/admin'), page.click('form.stacked button[type=submit]')])
  t.match(await page.locator('.flash').textContent(), /Saved “Edited in a real browser”/)
  await reader.goto(`${base}/post/${id ?? ''}`)
  t.equal(await reader.locator('article.post h1').textContent(), 'Edited in a real browser', 'the reader gets the edit at once')
  t.match(await reader.locator('article.post .body').textContent(), /The second version/)
  await reader.goto(base + '/')
  t.equal((await titlesOn(reader))[0], 'Edited in a real browser', 'on the index too')

  // Delete it.
  const editedRow = page.locator('tr', { hasText: 'Edited in a real browser' })
  await Promise.all([page.waitForURL(base + '/admin'), editedRow.locator('button:has-text("Delete")').click()])
  t.match(await page.locator('.flash').textContent(), new RegExp(`Deleted post ${id ?? ''}`))
  await reader.goto(base + '/')
  t.notOk((await titlesOn(reader)).includes('Edited in a real browser'), 'gone from the index')
  const gone = await reader.goto(`${base}/post/${id ?? ''}`)
  t.equal(gone?.status(), 404, 'the post page is a 404')
  t.match(await reader.locator('h1').textContent(), /Page not found/)
  app.sampleCacheStats()

  // The dashboard.
  await Promise.all([page.waitForURL(base + '/admin/cache'), page.click('#admin-bar a[href="/admin/cache"]')])
  t.equal(await page.locator('#store-kind').textContent(), 'redis')
  t.ok(Number(await page.locator('#hits').textContent()) > 0, 'hits counted')
  t.equal(await page.locator('svg.chart').count(), 1, 'the hit ratio chart')
  t.equal(await page.locator('svg.chart polyline.ratio').count(), 1, 'with the sampled ratios on it')
  const keys = await page.locator('#keys code').allTextContents()
  t.ok(keys.includes('view//'), 'the index is listed among the cached keys')
  await page.screenshot({ path: OUTPUT + 'dashboard.png', fullPage: true })

  // Purge the index from the dashboard: the reader's next visit computes it again.
  const indexRow = page.locator('#keys tr', { has: page.locator('code', { hasText: /^view\/\/$/ }) })
  await Promise.all([page.waitForURL(base + '/admin/cache'), indexRow.locator('button:has-text("Purge")').click()])
  t.match(await page.locator('.flash').textContent(), /Purged view\/\//)
  t.equal((await reader.goto(base + '/'))?.headers()['x-cache'], 'MISS', 'purged from the dashboard')

  for (const file of ['index.png', 'dashboard.png']) t.ok(statSync(OUTPUT + file).size > 10_000, `${file} written`)
})
