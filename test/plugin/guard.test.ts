import { execFileSync } from 'node:child_process'
import { mkdtempSync, openSync, closeSync, rmSync, writeSync } from 'node:fs'
import { Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import { CircuitBreaker, type BreakerTicket } from '../../plugin/breaker.js'
import { FailOpen } from '../../plugin/fail-open.js'
import { FleetLocks } from '../../plugin/fleet-locks.js'
import { CacheCounters } from '../../plugin/stats.js'
import { MemoryStore } from '../../plugin/stores/memory.js'

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

/** A fail-open layer on a clock the test moves by hand (the breaker's cooldown), with its own counters. */
function failOpenAt (threshold: number, cooldownMs = 50, lookupTimeoutMs = 20): { failOpen: FailOpen, counters: CacheCounters, clock: { now: number } } {
  const clock = { now: 1_000 }
  const counters = new CacheCounters()
  const failOpen = new FailOpen({ lookupTimeoutMs, breakerThreshold: threshold, breakerCooldownMs: cooldownMs, errorLogIntervalMs: 10_000 },
    counters, Fastify({ logger: false }).log, () => clock.now)
  return { failOpen, counters, clock }
}

/**
 * An answer that is already in this process's socket when the budget's timer comes due: the bytes are written into a
 * FIFO, whose read end the event loop watches, while the loop is blocked for three budgets. No other process and no
 * wall-clock race is involved: the bytes are in the kernel's buffer before the loop polls again.
 */
function answerWhileBusy (t: Test): () => Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'fastify-cache-fifo-'))
  const fifo = join(dir, 'answer')
  execFileSync('mkfifo', [fifo])
  const reader = new Socket({ fd: openSync(fifo, 'r+'), readable: true, writable: false })
  const writer = openSync(fifo, 'w')
  t.teardown(() => {
    reader.destroy()
    closeSync(writer)
    rmSync(dir, { recursive: true, force: true })
  })
  return async () => {
    const answered = new Promise<string>((resolve) => reader.once('data', (chunk: Buffer) => resolve(chunk.toString())))
    const end = performance.now() + 60
    while (performance.now() < end) {} // eslint-disable-line no-empty
    writeSync(writer, 'answer')
    return await answered
  }
}

async function openBreaker (t: Test, failOpen: FailOpen, clock: { now: number }, cooldownMs: number): Promise<void> {
  await failOpen.call('lookup', async () => await Promise.reject(new Error('down')), 20)
  t.equal(failOpen.breakerState, 'open')
  clock.now += cooldownMs
  t.equal(failOpen.breakerState, 'half-open')
}

t.test('the fail-open layer judges the store, not the event loop', async (t) => {
  t.test('an answer that arrived while the loop was busy is no timeout', async (t) => {
    const { failOpen, counters } = failOpenAt(1)
    t.equal(await failOpen.call('lookup', answerWhileBusy(t), 20), 'answer')
    t.equal(counters.errors, 0)
    t.equal(failOpen.breakerState, 'closed')
  })

  t.test('nor a late probe', async (t) => {
    const { failOpen, clock } = failOpenAt(1)
    await openBreaker(t, failOpen, clock, 50)
    t.equal(await failOpen.call('write', answerWhileBusy(t)), 'answer')
    t.equal(failOpen.breakerState, 'closed', 'the probe closed the breaker')
  })

  t.test('a slow answer while closed is no failure', async (t) => {
    const { failOpen } = failOpenAt(1)
    t.equal(await failOpen.call('write', async () => await new Promise((resolve) => setTimeout(resolve, 60, 'written'))), 'written')
    t.equal(failOpen.breakerState, 'closed', 'threshold 1, yet not opened')
  })

  t.test('a probe slower than the budget re-opens the breaker without waiting for its answer', async (t) => {
    const { failOpen, clock } = failOpenAt(1, 300)
    await openBreaker(t, failOpen, clock, 300)
    let answer!: (value: string) => void
    const probing = failOpen.call('write', async () => await new Promise<string>((resolve) => { answer = resolve }))
    // The budget's timer, then the check phase after it: the probe has not answered by then.
    await new Promise((resolve) => setTimeout(resolve, 40))
    await new Promise((resolve) => setImmediate(resolve))
    t.equal(failOpen.breakerState, 'open', 're-opened at the end of the budget')
    answer('written')
    t.equal(await probing, 'written', 'the write itself still completes')
    t.equal(failOpen.breakerState, 'open', 'and its late answer does not close the breaker (the cooldown runs from the end of the budget)')
  })
})

t.test('a fleet lock with the breaker open is neither taken nor waited for: compute without it', async (t) => {
  const store = new MemoryStore({ maxBytes: 1_000_000 })
  const { failOpen, counters } = failOpenAt(1, 60_000)
  const locks = new FleetLocks(store, failOpen, { lockTimeoutMs: 10_000, lookupTimeoutMs: 50 })
  await failOpen.call('lookup', async () => await Promise.reject(new Error('down')), 20)
  t.equal(failOpen.breakerState, 'open')
  t.same(await locks.lock('page', 'v'), { held: false })
  t.equal(counters.skippedCalls, 1, 'the store was not asked')
  t.equal(await store.lockField('page', 'v', { token: 'other', ttlMs: 1_000 }), true, 'nothing was locked')
})
