import { sql } from 'drizzle-orm'
import { index, integer, sqliteTable, text } from 'drizzle-orm/sqlite-core'

export const posts = sqliteTable('posts', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  title: text('title').notNull(),
  slug: text('slug').notNull(),
  /** Markdown, rendered and sanitised on read. */
  body: text('body').notNull(),
  published: integer('published', { mode: 'boolean' }).notNull().default(false),
  createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull().default(sql`(unixepoch() * 1000)`),
  updatedAt: integer('updated_at', { mode: 'timestamp_ms' }).notNull().default(sql`(unixepoch() * 1000)`)
}, (table) => [
  // The index page lists published posts, newest first.
  index('posts_published_created_idx').on(table.published, table.createdAt)
])

export const users = sqliteTable('users', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  username: text('username').notNull().unique(),
  /** `scrypt$N$r$p$salt$hash`, salt and hash in base64. */
  passwordHash: text('password_hash').notNull(),
  createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull().default(sql`(unixepoch() * 1000)`)
})

/**
 * One row per logged-in session: the cookie carries only a random id, and a session is valid while its row exists
 * and has not expired. Logout deletes the row, so a copy of the cookie taken earlier opens nothing.
 */
export const sessions = sqliteTable('sessions', {
  /** SHA-256 of the session id, base64url: a copy of the table is not a set of live session ids. */
  idHash: text('id_hash').primaryKey(),
  userId: integer('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
  expiresAt: integer('expires_at', { mode: 'timestamp_ms' }).notNull()
}, (table) => [
  // Pruning deletes every expired row.
  index('sessions_expires_at_idx').on(table.expiresAt)
])

export type Post = typeof posts.$inferSelect
export type NewPost = typeof posts.$inferInsert
export type User = typeof users.$inferSelect
