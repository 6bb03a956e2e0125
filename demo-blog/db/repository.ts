import { and, count, desc, eq } from 'drizzle-orm'
import type { Database } from 'better-sqlite3'
import type { BetterSQLite3Database } from 'drizzle-orm/better-sqlite3'
import { slugify } from '../lib/markdown.js'
import * as schema from './schema.js'
import { posts, users, type Post, type User } from './schema.js'

/** Drizzle over better-sqlite3; `$client` is the raw connection (pragmas, close). */
export type BlogDatabase = BetterSQLite3Database<typeof schema> & { $client: Database }

export interface PostInput {
  title: string
  body: string
  published: boolean
}

export interface PostPage {
  posts: Post[]
  total: number
}

/**
 * Every query the blog makes. better-sqlite3 is synchronous: when a write method returns, the row is committed,
 * which is what lets a route purge the cache right after it.
 */
export class Posts {
  readonly #db: BlogDatabase

  constructor (db: BlogDatabase) {
    this.#db = db
  }

  /** Published posts, newest first. `page` counts from 1. */
  listPublished (page: number, perPage: number): PostPage {
    const rows = this.#db.select().from(posts).where(eq(posts.published, true))
      .orderBy(desc(posts.createdAt), desc(posts.id)).limit(perPage).offset((page - 1) * perPage).all()
    const total = this.#db.select({ n: count() }).from(posts).where(eq(posts.published, true)).get()?.n ?? 0
    return { posts: rows, total }
  }

  /** Every post, drafts included, for the admin. */
  listAll (): Post[] {
    return this.#db.select().from(posts).orderBy(desc(posts.createdAt), desc(posts.id)).all()
  }

  get (id: number): Post | undefined {
    return this.#db.select().from(posts).where(eq(posts.id, id)).get()
  }

  getPublished (id: number): Post | undefined {
    return this.#db.select().from(posts).where(and(eq(posts.id, id), eq(posts.published, true))).get()
  }

  create (input: PostInput, createdAt = new Date()): Post {
    return this.#db.insert(posts).values({
      ...input, slug: slugify(input.title), createdAt, updatedAt: createdAt
    }).returning().get()
  }

  /** Resolves undefined when there is no such post. */
  update (id: number, input: PostInput): Post | undefined {
    return this.#db.update(posts).set({ ...input, slug: slugify(input.title), updatedAt: new Date() })
      .where(eq(posts.id, id)).returning().get()
  }

  delete (id: number): boolean {
    return this.#db.delete(posts).where(eq(posts.id, id)).run().changes > 0
  }
}

export class Users {
  readonly #db: BlogDatabase

  constructor (db: BlogDatabase) {
    this.#db = db
  }

  find (username: string): User | undefined {
    return this.#db.select().from(users).where(eq(users.username, username)).get()
  }

  count (): number {
    return this.#db.select({ n: count() }).from(users).get()?.n ?? 0
  }
}
