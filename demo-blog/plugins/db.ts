import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { drizzle } from 'drizzle-orm/better-sqlite3'
import { migrate } from 'drizzle-orm/better-sqlite3/migrator'
import fp from 'fastify-plugin'
import { Posts, Sessions, Users, type BlogDatabase } from '../db/repository.js'
import * as schema from '../db/schema.js'
import { seedIfEmpty } from '../db/seed.js'

export interface DbPluginOptions {
  /** SQLite file; its directory is created. */
  path: string
  adminUser: string
  adminPassword: string
}

declare module 'fastify' {
  interface FastifyInstance {
    db: BlogDatabase
    posts: Posts
    users: Users
    sessions: Sessions
  }
}

const MIGRATIONS = fileURLToPath(new URL('../db/migrations', import.meta.url))

export default fp<DbPluginOptions>(async function dbPlugin (fastify, options) {
  mkdirSync(dirname(options.path), { recursive: true })
  const sqlite = new Database(options.path)
  fastify.addHook('onClose', () => { sqlite.close() })
  // WAL: readers never wait for the writer, and a commit is one fsync of the log.
  sqlite.pragma('journal_mode = WAL')
  sqlite.pragma('synchronous = NORMAL')
  sqlite.pragma('foreign_keys = ON')
  sqlite.pragma('busy_timeout = 5000')

  const db = drizzle({ client: sqlite, schema })
  migrate(db, { migrationsFolder: MIGRATIONS })
  if (await seedIfEmpty(db, options)) {
    fastify.log.info({ path: options.path, admin: options.adminUser }, 'blog database created and seeded')
  }

  fastify.decorate('db', db)
  fastify.decorate('posts', new Posts(db))
  fastify.decorate('users', new Users(db))
  const sessions = new Sessions(db)
  sessions.prune()
  fastify.decorate('sessions', sessions)
}, { fastify: '5.x', name: 'blog-db' })
