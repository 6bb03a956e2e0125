// Corrupt or foreign data written straight into Redis under a page's key, the way another app, a bad migration or a
// truncated copy would leave it.
import type { Redis } from 'ioredis'
import { encodePage } from '../../plugin/index.js'
import { etagOf } from '../../plugin/entry.js'
import { VERSION_FIELD } from '../../plugin/stores/store.js'

export const CORRUPTIONS = [
  'garbage', 'empty', 'truncated-header', 'truncated-body', 'string', 'list', 'value-entry', 'version-garbage',
  'bad-status', 'bad-header-name', 'tags-string', 'set-cookie', 'transfer-encoding', 'time-not-a-number', 'negative-ttl'
] as const
export type Corruption = typeof CORRUPTIONS[number]

export const CORRUPTION_NOTES: Record<Corruption, string> = {
  garbage: 'random bytes in the variant',
  empty: 'an empty variant',
  'truncated-header': 'a real entry cut inside its JSON header',
  'truncated-body': 'a real entry missing the last 40 bytes of its body',
  string: 'a plain string at the key (another app)',
  list: 'a list at the key (another app)',
  'value-entry': 'a value entry (kind V) where a page belongs',
  'version-garbage': `a non-numeric "${VERSION_FIELD}" field in the hash`,
  'bad-status': 'a well-formed page entry with status 0',
  'bad-header-name': 'a well-formed page entry with a header name containing a space',
  'tags-string': 'a well-formed page entry whose tags are a string, not a list (it would block every purge from L1)',
  'set-cookie': 'a well-formed page entry carrying a planted set-cookie header',
  'transfer-encoding': 'a well-formed page entry carrying transfer-encoding: chunked next to an unchunked body',
  'time-not-a-number': 'a well-formed page entry whose creation time is a string',
  'negative-ttl': 'a well-formed page entry with a negative ttl'
}

/** The entry the plugin itself would store for `body`. */
export function pageEntry (body: string, overrides: {
  status?: number, headers?: Record<string, string>, createdAt?: unknown, ttlMs?: number, tags?: unknown
} = {}): Buffer {
  const bytes = Buffer.from(body)
  return encodePage({
    status: overrides.status ?? 200,
    headers: overrides.headers ?? { 'content-type': 'text/plain; charset=utf-8' },
    body: bytes,
    createdAt: (overrides.createdAt ?? Date.now()) as number,
    ttlMs: overrides.ttlMs ?? 300_000,
    etag: etagOf(bytes),
    staleMs: 0,
    tags: (overrides.tags ?? []) as string[]
  })
}

/**
 * Writes corruption `kind` at `storeKey` (the page's plain variant, field ''); `body` is the page's real body. Entries
 * it writes are dated a second back, so that a fresh entry written by the plugin afterwards is told apart.
 */
export async function corrupt (client: Redis, storeKey: string, kind: Corruption, body: string): Promise<void> {
  const createdAt = Date.now() - 1_000
  const real = pageEntry(body, { createdAt })
  const field = async (value: Buffer): Promise<void> => {
    await client.multi().del(storeKey).hset(storeKey, '', value).pexpire(storeKey, 300_000).exec()
  }
  switch (kind) {
    case 'garbage': return await field(Buffer.from([0x00, 0xff, 0x13, 0x37, 0x7b, 0x22, 0x73, 0x22, 0x3a, 0x32, 0x30, 0x30]))
    case 'empty': return await field(Buffer.alloc(0))
    case 'truncated-header': return await field(real.subarray(0, 20))
    case 'truncated-body': return await field(real.subarray(0, real.length - 40))
    case 'string': await client.multi().del(storeKey).set(storeKey, 'foreign value', 'PX', 300_000).exec(); return
    case 'list': await client.multi().del(storeKey).rpush(storeKey, 'a', 'b').pexpire(storeKey, 300_000).exec(); return
    case 'value-entry': {
      const value = Buffer.from(real)
      value[4] = 0x56 // 'V'
      return await field(value)
    }
    case 'version-garbage': {
      await client.multi().del(storeKey).hset(storeKey, '', real, VERSION_FIELD, 'not-a-number').pexpire(storeKey, 300_000).exec()
      // the entry itself stays readable: what matters is whether the key can be written again once it is stale or gone
      await client.hdel(storeKey, '')
      return
    }
    case 'bad-status': return await field(pageEntry(body, { status: 0, createdAt }))
    case 'bad-header-name': return await field(pageEntry(body, { headers: { 'content type': 'text/plain' }, createdAt }))
    case 'tags-string': return await field(pageEntry(body, { tags: 'post:1', createdAt }))
    case 'set-cookie':
      return await field(pageEntry(body, { headers: { 'content-type': 'text/plain; charset=utf-8', 'set-cookie': 'blog_session=planted' }, createdAt }))
    case 'transfer-encoding':
      return await field(pageEntry(body, { headers: { 'content-type': 'text/plain; charset=utf-8', 'transfer-encoding': 'chunked' }, createdAt }))
    case 'time-not-a-number': return await field(pageEntry(body, { createdAt: String(createdAt) }))
    case 'negative-ttl': return await field(pageEntry(body, { ttlMs: -1, createdAt }))
  }
}
