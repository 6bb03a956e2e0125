import { createHash, randomBytes } from 'node:crypto'
import { and, count, desc, eq, gt, lte } from 'drizzle-orm'
import type { Database } from 'better-sqlite3'
import type { BetterSQLite3Database } from 'drizzle-orm/better-sqlite3'
import { slugify } from '../lib/markdown.js'
import * as schema from './schema.js'
import { posts, sessions, users, type Post, type User } from './schema.js'

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

/** Who a live session belongs to. */
export interface SessionOwner {
  id: number
  username: string
}

const hashOf = (sessionId: string): string => createHash('sha256').update(sessionId).digest('base64url')

/**
 * Server-side sessions: the cookie carries a random id; the row says whose it is and until when. A session is
 * live only while its row exists and has not expired, so deleting the row revokes every copy of the cookie.
 */
export class Sessions {
  readonly #db: BlogDatabase
  readonly #now: () => number

  /** `now` is a clock in milliseconds, for tests. */
  constructor (db: BlogDatabase, now: () => number = Date.now) {
    this.#db = db
    this.#now = now
  }

  /**
   * Opens a session for `userId` that lasts `lifetimeMs`, and returns its id (for the cookie). Expired rows are
   * pruned first: rows are only ever added here, so the table holds at most the logins of one lifetime.
   */
  create (userId: number, lifetimeMs: number): string {
    const sessionId = randomBytes(32).toString('base64url')
    const now = this.#now()
    this.prune()
    this.#db.insert(sessions).values({
      idHash: hashOf(sessionId), userId, createdAt: new Date(now), expiresAt: new Date(now + lifetimeMs)
    }).run()
    return sessionId
  }

  /** The owner of a live session, or undefined when it was revoked, has expired or never existed. */
  ownerOf (sessionId: string): SessionOwner | undefined {
    return this.#db.select({ id: users.id, username: users.username }).from(sessions)
      .innerJoin(users, eq(users.id, sessions.userId))
      .where(and(eq(sessions.idHash, hashOf(sessionId)), gt(sessions.expiresAt, new Date(this.#now())))).get()
  }

  /** Ends a session: every copy of its cookie is anonymous from now on. Returns whether there was a row. */
  revoke (sessionId: string): boolean {
    return this.#db.delete(sessions).where(eq(sessions.idHash, hashOf(sessionId))).run().changes > 0
  }

  /** Deletes every expired row; returns how many. */
  prune (): number {
    return this.#db.delete(sessions).where(lte(sessions.expiresAt, new Date(this.#now()))).run().changes
  }

  count (): number {
    return this.#db.select({ n: count() }).from(sessions).get()?.n ?? 0
  }
}
