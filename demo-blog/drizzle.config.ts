import { defineConfig } from 'drizzle-kit'

// Run from the repository root: npx drizzle-kit generate --config demo-blog/drizzle.config.ts
export default defineConfig({
  dialect: 'sqlite',
  schema: './demo-blog/db/schema.ts',
  out: './demo-blog/db/migrations',
  dbCredentials: { url: process.env.BLOG_DB ?? './data/blog.db' }
})
