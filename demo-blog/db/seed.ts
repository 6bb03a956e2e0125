import { hashPassword } from '../lib/passwords.js'
import { slugify } from '../lib/markdown.js'
import type { BlogDatabase } from './repository.js'
import { count } from 'drizzle-orm'
import { posts, users, type NewPost } from './schema.js'

export interface SeedOptions {
  adminUser: string
  adminPassword: string
}

const HOUR = 3600_000

type SeedPost = Pick<NewPost, 'title' | 'body' | 'published'>

// Oldest first; each one an hour newer than the last, so the index order is stable.
const SEED_POSTS: SeedPost[] = [
  {
    title: '利用Redis做Flask緩存後端',
    published: true,
    body: `這個博客的起點是一篇2019年的文章：用 Flask-Caching 把 Flask 博客的頁面緩存在 Redis 裏。

> Redis 的數據完全保存在內存裏，讀取極快，正適合做緩存後端。

原文的做法很簡單：

- 首頁 \`@cache.cached(timeout=20 * 60, unless=is_login)\`，登錄後不走緩存；
- 關於頁緩存兩小時，文章頁緩存三十分鐘；
- 登錄、退出以及新建、編輯、刪除文章時調用 \`cache.delete('view/%s' % url_for('blog.index'))\` 清除首頁緩存。

    @blog_bp.route('/')
    @cache.cached(timeout=20 * 60, unless=is_login)
    def index():
        time.sleep(1)
        return render_template('blog/index.html')

現在你看到的這個博客就是它的 Fastify 版本：同樣的緩存時間，同樣的鍵 \`view//\`，
只是清除緩存放在數據庫提交**之後**，讀者永遠不會看到過期的內容。`
  },
  {
    title: 'From Flask-Caching to fastify-cache, line by line',
    published: true,
    body: `Every decorator of the original Flask blog has a one-line equivalent here.

| Flask-Caching | fastify-cache |
|---|---|
| \`@cache.cached(timeout=20*60, unless=is_login)\` | \`config: { cache: { ttl: 20 * 60, unless } }\` |
| \`cache.delete('view/%s' % url_for('blog.index'))\` | \`await fastify.cache.delete('view//')\` |
| \`@cache.memoize()\` | \`fastify.cache.memoize(fn)\` |
| \`cache.clear()\` | \`await fastify.cache.clear()\` |

The key of a page is still \`view/<path>\`, so the index is \`view//\`. Deleting it removes every
\`?page=N\` variant too, which Flask-Caching could not do.`
  },
  {
    title: 'Why the purge comes after the commit',
    published: true,
    body: `The Flask post deleted the index from the cache *before* deleting the post from the database.
A reader arriving between the two would cache the old index again, for twenty minutes.

This blog writes first, then purges. The cache plugin also remembers that a purge happened while a page was
being rendered, and does not store that page. Edit a post, open it in a private window: the change is there.`
  },
  {
    title: 'What the cache dashboard shows',
    published: true,
    body: `The original post used **Flask-DebugToolbar** to see whether a page came from Redis.
Here every cached page answers with an \`x-cache\` header (\`MISS\`, \`HIT\` or \`BYPASS\`), and
[the dashboard](/admin/cache) shows the hit ratio over the last minutes, the keys with their time to live,
and buttons to purge one key or all of them.`
  },
  {
    title: 'Draft: two tiers and a bus',
    published: false,
    body: 'Not published yet: a hot page served from memory, with Redis behind it and a bus to keep instances in step.'
  }
]

/**
 * On first start (no user yet): the admin account and a few posts, in one transaction. Later starts change
 * nothing, so posts the admin deleted stay deleted.
 */
export async function seedIfEmpty (db: BlogDatabase, options: SeedOptions, now = Date.now()): Promise<boolean> {
  const userCount = (database: Pick<BlogDatabase, 'select'>): number =>
    database.select({ n: count() }).from(users).get()?.n ?? 0
  if (userCount(db) > 0) return false
  const passwordHash = await hashPassword(options.adminPassword)
  return db.transaction((tx) => {
    if (userCount(tx) > 0) return false // another process seeded while we hashed
    tx.insert(users).values({ username: options.adminUser, passwordHash }).run()
    SEED_POSTS.forEach((post, i) => {
      const at = new Date(now - (SEED_POSTS.length - i) * HOUR)
      tx.insert(posts).values({ ...post, slug: slugify(post.title), createdAt: at, updatedAt: at }).run()
    })
    return true
  })
}
