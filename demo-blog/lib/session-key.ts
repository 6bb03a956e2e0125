import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/** libsodium's crypto_secretbox_KEYBYTES, what @fastify/secure-session needs. */
export const SESSION_KEY_BYTES = 32
export const SESSION_KEY_FILE = 'session-key'

/** A 32-byte key given as 64 hex digits or as base64. Throws a message that says what was wrong. */
export function parseSessionKey (text: string): Buffer {
  const trimmed = text.trim()
  const key = /^[0-9a-fA-F]{64}$/.test(trimmed)
    ? Buffer.from(trimmed, 'hex')
    : /^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed) ? Buffer.from(trimmed, 'base64') : Buffer.alloc(0)
  if (key.length !== SESSION_KEY_BYTES) {
    throw new Error(`SESSION_KEY must be ${SESSION_KEY_BYTES} bytes as 64 hex digits or base64 ` +
      '(try: node -e "console.log(require(\'crypto\').randomBytes(32).toString(\'hex\'))")')
  }
  return key
}

/**
 * The key kept in `dir`: read when present, otherwise generated once and written with mode 0600, so sessions
 * survive restarts. Two processes starting together agree on whichever file was written first.
 */
export function loadOrCreateSessionKey (dir: string): { key: Buffer, created: boolean } {
  const file = join(dir, SESSION_KEY_FILE)
  mkdirSync(dir, { recursive: true })
  try {
    writeFileSync(file, randomBytes(SESSION_KEY_BYTES).toString('hex') + '\n', { flag: 'wx', mode: 0o600 })
    return { key: parseSessionKey(readFileSync(file, 'utf8')), created: true }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  }
  return { key: parseSessionKey(readFileSync(file, 'utf8')), created: false }
}
