import { execFileSync } from 'node:child_process'
import t from 'tap'
import Fastify from 'fastify'
import { CacheCore } from '../../plugin/core.js'
import { CircuitBreaker, type BreakerTicket } from '../../plugin/guard.js'
import { normalizeOptions } from '../../plugin/options.js'
import { MemoryStore } from '../../plugin/stores/memory.js'
import { redisForFile, sleep } from '../helpers/redis.js'

/** A breaker on a clock the test moves by hand. */
function breakerAt (threshold: number, cooldownMs: number): { breaker: CircuitBreaker, clock: { now: number } } {
  const clock = { now: 1_000 }
  return { breaker: new CircuitBreaker(threshold, cooldownMs, () => clock.now), clock }
}

function ticket (breaker: CircuitBreaker): BreakerTicket {
  const granted = breaker.allow()
  if (granted === undefined) throw new Error('the breaker refused a call')
  return granted
}

t.test('breaker: consecutive failures open it; an answer within the budget resets the count, a late one does not', async (t) => {
  const { breaker } = breakerAt(3, 1_000)
  t.notOk(breaker.failure(ticket(breaker)))
  t.notOk(breaker.failure(ticket(breaker)))
  t.notOk(breaker.success(ticket(breaker)), 'a success while closed closes nothing')
  t.notOk(breaker.failure(ticket(breaker)))
  breaker.late(ticket(breaker)) // neither a failure nor a reset
  t.notOk(breaker.failure(ticket(breaker)))
  t.equal(breaker.state, 'closed', 'two failures since the reset, the late answer not counted')
  t.ok(breaker.failure(ticket(breaker)), 'the third consecutive failure opens it')
  t.equal(breaker.state, 'open')
  t.equal(breaker.allow(), undefined, 'no call goes to the store while open')
})

t.test('breaker: calls let through before it opened decide nothing', async (t) => {
  const { breaker, clock } = breakerAt(1, 1_000)
  const before = [ticket(breaker), ticket(breaker)]
  t.ok(breaker.failure(ticket(breaker)))
  t.notOk(breaker.success(before[0] as BreakerTicket), 'an answer to an older call does not close it')
  t.equal(breaker.state, 'open')
  clock.now += 999
  breaker.failure(before[1] as BreakerTicket)
  clock.now += 1
  t.equal(breaker.state, 'half-open', 'nor does an older failure extend the cooldown')
})

t.test('breaker: one probe at a time; it alone closes or re-opens the breaker', async (t) => {
  const { breaker, clock } = breakerAt(1, 1_000)
  breaker.failure(ticket(breaker))
  clock.now += 1_000
  const probe = ticket(breaker)
  t.ok(probe.probe)
  t.equal(breaker.allow(), undefined, 'a second call waits for the probe')
  t.notOk(breaker.failure(probe), 'a failed probe re-opens it; that is no new opening to log')
  t.equal(breaker.state, 'open')
  clock.now += 999
  t.equal(breaker.state, 'open', 'for a whole cooldown')
  clock.now += 1

  const late = ticket(breaker)
  breaker.late(late)
  t.equal(breaker.state, 'open', 'a probe that has not answered within the budget re-opens it at once')
  t.notOk(breaker.success(late), 'and its answer, when it comes, closes nothing')
  t.equal(breaker.state, 'open')
  clock.now += 1_000

  t.ok(breaker.success(ticket(breaker)), 'a probe answered within the budget closes it')
  t.equal(breaker.state, 'closed')
})

t.test('breaker: probeNow ends the cooldown and gives up on a probe sent before it', async (t) => {
  const { breaker, clock } = breakerAt(1, 1_000)
  breaker.probeNow()
  t.equal(breaker.state, 'closed', 'nothing to do while closed')
  breaker.failure(ticket(breaker))
  clock.now += 10
  breaker.probeNow()
  const stuck = ticket(breaker)
  t.ok(stuck.probe, 'the connection is back: the next call probes')
  breaker.probeNow() // back again, e.g. after a reconnection that the stuck probe's connection did not see
  const fresh = ticket(breaker)
  t.ok(fresh.probe, 'a new probe goes out at once')
  t.notOk(breaker.success(stuck), "the old probe's answer decides nothing")
  t.equal(breaker.state, 'half-open')
  t.ok(breaker.success(fresh))
  t.equal(breaker.state, 'closed')
})

t.test('failOpen judges the store, not the event loop', async (t) => {
  const { redis, client } = await redisForFile(t)
  await client.ping() // connected before any budget runs
  const log = Fastify({ logger: false }).log
  const coreWith = (threshold: number, cooldownMs = 50): CacheCore => new CacheCore(new MemoryStore({ maxBytes: 1_000_000 }),
    normalizeOptions({ lookupTimeoutMs: 20, breaker: { threshold, cooldownMs } }), log)
  const counter = `${redis.prefix}guard-counter`
  /** Blocks the event loop for three budgets, and until Redis has run the INCR (so its answer is in our socket). */
  const blockUntilAnswered = (value: number): void => {
    const end = Date.now() + 60
    while (Date.now() < end) {} // eslint-disable-line no-empty
    // A second connection, synchronous: Redis writes the INCR's answer before it answers this GET.
    while (Number(execFileSync('redis-cli', ['-u', redis.url, 'GET', counter]).toString()) < value) {} // eslint-disable-line no-empty
  }
  // Redis answers at once, but the process is busy (as when it renders other requests) past the budget: the answer
  // waits in the socket. Sent from an I/O callback, as a request's lookup is, so the budget's timer comes due before
  // the next read of the socket.
  const answeredWhileBusy = async (): Promise<number> => {
    await client.ping()
    const expected = Number(await client.get(counter)) + 1
    const answer = client.incr(counter)
    blockUntilAnswered(expected)
    return await answer
  }
  const openBreaker = async (core: CacheCore): Promise<void> => {
    await core.failOpen('lookup', async () => await Promise.reject(new Error('down')), 20)
    t.equal(core.breaker.state, 'open')
    await sleep(core.options.breakerCooldownMs + 10)
    t.equal(core.breaker.state, 'half-open')
  }

  t.test('an answer that arrived while the loop was busy is no timeout', async (t) => {
    const core = coreWith(1)
    t.type(await core.failOpen('lookup', answeredWhileBusy, 20), 'number')
    t.equal(core.counters.errors, 0)
    t.equal(core.breaker.state, 'closed')
  })

  t.test('nor a late probe', async (t) => {
    const core = coreWith(1)
    await openBreaker(core)
    t.type(await core.failOpen('write', answeredWhileBusy, undefined), 'number')
    t.equal(core.breaker.state, 'closed', 'the probe closed the breaker')
  })

  t.test('a slow answer while closed is no failure', async (t) => {
    const core = coreWith(1)
    t.equal(await core.failOpen('write', async () => await sleep(60, 'written'), undefined), 'written')
    t.equal(core.breaker.state, 'closed', 'threshold 1, yet not opened')
  })

  t.test('a probe slower than the budget re-opens the breaker without waiting for its answer', async (t) => {
    const core = coreWith(1, 300)
    await openBreaker(core)
    const probing = core.failOpen('write', async () => await sleep(100, 'written'), undefined)
    await sleep(40)
    t.equal(core.breaker.state, 'open', 're-opened at the end of the budget')
    t.equal(await probing, 'written', 'the write itself still completes')
    t.equal(core.breaker.state, 'open', 'and its late answer does not close the breaker (the cooldown runs from the end of the budget)')
  })
})

t.test('lockPage with the breaker open neither takes a lock nor waits for one: compute without it', async (t) => {
  const store = new MemoryStore({ maxBytes: 1_000_000 })
  const core = new CacheCore(store, normalizeOptions({ breaker: { threshold: 1, cooldownMs: 60_000 } }), Fastify({ logger: false }).log)
  await core.failOpen('lookup', async () => await Promise.reject(new Error('down')), 20)
  t.equal(core.breaker.state, 'open')
  t.same(await core.lockPage('page', 'v'), { held: false })
  t.equal(core.counters.skipped, 1, 'the store was not asked')
  t.equal(await store.lockField('page', 'v', { token: 'other', ttlMs: 1_000 }), true, 'nothing was locked')
})
