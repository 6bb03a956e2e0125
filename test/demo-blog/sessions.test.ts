// The server-side session table (db/repository.ts Sessions), on a migrated database, with a clock the test moves.
import { createHash } from 'node:crypto'
import t from 'tap'
import { Sessions } from '../../demo-blog/db/repository.js'
import { buildBlog } from './fixtures/blog.js'

const HOUR = 3600_000

async function sessionsWithClock (t: Parameters<typeof buildBlog>[0]): Promise<{ sessions: Sessions, clock: { now: number }, rows: () => unknown[] }> {
  const app = await buildBlog(t, undefined)
  const clock = { now: Date.UTC(2026, 0, 1) }
  const rows = (): unknown[] => app.db.$client.prepare('SELECT * FROM sessions ORDER BY expires_at').all()
  return { sessions: new Sessions(app.db, () => clock.now), clock, rows }
}

t.test('a session is live from its creation until its expiry, and no longer', async (t) => {
  const { sessions, clock } = await sessionsWithClock(t)
  const sid = sessions.create(1, HOUR)
  t.match(sid, /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url')
  t.same(sessions.ownerOf(sid), { id: 1, username: 'admin' }, 'its owner, read from the users table')
  clock.now += HOUR - 1
  t.same(sessions.ownerOf(sid), { id: 1, username: 'admin' }, 'one millisecond before the expiry: live')
  clock.now += 1
  t.equal(sessions.ownerOf(sid), undefined, 'at the expiry: over')
  t.equal(sessions.ownerOf('never-issued'), undefined, 'an id never issued is nobody\'s')
  t.not(sessions.create(1, HOUR), sessions.create(1, HOUR), 'every session gets its own id')
})

t.test('revoking ends one session and leaves the others', async (t) => {
  const { sessions } = await sessionsWithClock(t)
  const first = sessions.create(1, HOUR)
  const second = sessions.create(1, HOUR)
  t.equal(sessions.revoke(first), true, 'there was a row')
  t.equal(sessions.ownerOf(first), undefined, 'the revoked one is over')
  t.same(sessions.ownerOf(second), { id: 1, username: 'admin' }, 'the other one is not')
  t.equal(sessions.revoke(first), false, 'revoking twice finds nothing')
})

t.test('expired rows are pruned, by prune() and by every new session', async (t) => {
  const { sessions, clock, rows } = await sessionsWithClock(t)
  sessions.create(1, HOUR)
  sessions.create(1, 2 * HOUR)
  const lasting = sessions.create(1, 3 * HOUR)
  t.equal(sessions.count(), 3)
  clock.now += HOUR
  t.equal(sessions.prune(), 1, 'the one that expired is deleted')
  t.equal(sessions.count(), 2)
  clock.now += HOUR
  const fresh = sessions.create(1, HOUR)
  t.equal(sessions.count(), 2, 'the next login deleted the one that expired meanwhile')
  t.same(rows().map((row) => (row as { expires_at: number }).expires_at), [clock.now + HOUR, clock.now + HOUR],
    'what is left is live')
  t.ok(sessions.ownerOf(lasting) !== undefined && sessions.ownerOf(fresh) !== undefined)
  t.equal(sessions.prune(), 0, 'nothing else to prune')
})

t.test('the table keeps a hash of each session id, never the id itself', async (t) => {
  const { sessions, rows } = await sessionsWithClock(t)
  const sid = sessions.create(1, HOUR)
  const [row] = rows() as Array<{ id_hash: string, user_id: number }>
  t.equal(row?.id_hash, createHash('sha256').update(sid).digest('base64url'))
  t.notMatch(JSON.stringify(rows()), sid, 'the id is nowhere in the table')
  t.equal(row?.user_id, 1)
})
