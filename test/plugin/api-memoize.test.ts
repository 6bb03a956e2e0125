import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { build } from '../helpers/app.js'
import { redisForFile } from '../helpers/redis.js'

const { redis } = await redisForFile(t)

/** How many entries a memoized function holds in the store. */
async function entriesOf (app: FastifyInstance, name: string): Promise<number | undefined> {
  return (await app.cache.keys()).find(({ key }) => key === `memoize/${name}`)?.variants
}

for (const backend of ['redis', 'memory'] as const) {
  t.test(`${backend}: arguments that JSON confuses are distinct calls`, async (t) => {
    const app = await build(t, backend === 'redis' ? { redis } : {})
    const seen: string[] = []
    const describe = app.cache.memoize(async (...args: unknown[]) => {
      seen.push(args.map((arg) => Object.prototype.toString.call(arg)).join(' '))
      return seen.length
    }, { name: 'describe', ttl: 60 })

    t.equal(await describe(1, null), 1)
    t.equal(await describe(1, undefined), 2, 'f(1, undefined) is not the entry of f(1, null)')
    t.equal(await describe(1, null), 1, 'and each is served from the cache')
    t.equal(await describe(1, undefined), 2)

    const lookAlikes: unknown[][] = [
      [NaN], [null], [Infinity], [-Infinity], [0], [-0], [1], [1n], ['1'],
      [new Date(0)], [new Date(0).toISOString()], [new Map([['a', 1]])], [{ a: 1 }], [new Set([1])], [[1]],
      [Buffer.from('a')], [new Uint8Array([97])], [Buffer.from('a').toJSON()], [{ a: undefined }], [{}]
    ]
    const first = await Promise.all(lookAlikes.map(async (args) => await describe(...args)))
    t.equal(new Set(first).size, lookAlikes.length, 'each look-alike computed once, on its own')
    const again = await Promise.all(lookAlikes.map(async (args) => await describe(...args.map(copy))))
    t.same(again, first, 'an equal copy of each is served its own entry')
    t.equal(await entriesOf(app, 'describe'), lookAlikes.length + 2)

    t.equal(await app.cache.deleteMemoized(describe, 1, undefined), true)
    t.equal(await describe(1, null), 1, 'deleting f(1, undefined) leaves f(1, null)')
    t.equal(await describe(1, undefined), lookAlikes.length + 3, 'and f(1, undefined) is computed again')
  })

  t.test(`${backend}: arguments that cannot be compared are refused, not guessed`, async (t) => {
    const app = await build(t, backend === 'redis' ? { redis } : {})
    let calls = 0
    const run = app.cache.memoize(async (_options: unknown) => ++calls, { name: 'run' })
    await t.rejects(run({ onDone: () => {} }), { code: 'FST_CACHE_INVALID_KEY', message: /args\[0\]\.onDone is a function/ })
    const cycle: Record<string, unknown> = {}
    cycle.self = cycle
    await t.rejects(run(cycle), { code: 'FST_CACHE_INVALID_KEY', message: /cycle/ })
    await t.rejects(run(new URL('http://localhost/')), { code: 'FST_CACHE_INVALID_KEY', message: /instance of URL/ })
    await t.rejects(app.cache.deleteMemoized(run, () => {}), { code: 'FST_CACHE_INVALID_KEY' })
    t.equal(calls, 0, 'the function never ran on arguments it could not be keyed by')
    t.equal(await entriesOf(app, 'run'), undefined, 'and nothing was stored')
  })

  t.test(`${backend}: a memoized prototype method keeps one entry per instance`, async (t) => {
    const app = await build(t, backend === 'redis' ? { redis } : {})
    let calls = 0
    class Account {
      constructor (readonly balance: number) {}
      async projected (years: number): Promise<number> {
        calls++
        return this.balance * (1 + years)
      }
    }
    Account.prototype.projected = app.cache.memoize(Account.prototype.projected, { ttl: 60 })
    const [small, large, largeTwin] = [new Account(10), new Account(1000), new Account(1000)]

    t.equal(await small.projected(1), 20, '`this` reaches the method')
    t.equal(await large.projected(1), 2000, 'another instance does not get the first one\'s result')
    t.equal(await small.projected(1), 20)
    t.equal(await large.projected(1), 2000)
    t.equal(calls, 2, 'each instance computed once')
    t.equal(await largeTwin.projected(1), 2000)
    t.equal(calls, 3, 'an equal instance is still another object, with its own entry')
    t.equal(await entriesOf(app, 'projected'), 3, 'one entry per instance')

    const both = await Promise.all([small.projected(2), small.projected(2), large.projected(2)])
    t.same(both, [30, 30, 3000])
    t.equal(calls, 5, 'concurrent calls share a computation only on the same instance')

    t.equal(await app.cache.deleteMemoized(Account.prototype.projected, 1), true,
      'deleteMemoized with arguments drops that call on every instance')
    t.equal(await entriesOf(app, 'projected'), 2, 'the calls with other arguments stay')
    await small.projected(1)
    await large.projected(1)
    t.equal(calls, 7)
    t.equal(await app.cache.deleteMemoized(Account.prototype.projected, 3), false, 'a call never made: nothing dropped')

    t.equal(await app.cache.deleteMemoized(Account.prototype.projected), true, 'without arguments: every instance\'s')
    t.equal(await entriesOf(app, 'projected'), undefined)
    await small.projected(2)
    t.equal(calls, 8)
  })

  t.test(`${backend}: a static method and a plain call`, async (t) => {
    const app = await build(t, backend === 'redis' ? { redis } : {})
    class Rates {
      static base = 2
      static async times (n: number): Promise<number> { return this.base * n }
    }
    Rates.times = app.cache.memoize(Rates.times, { name: 'times' })
    t.equal(await Rates.times(3), 6, 'a static method gets its class as `this`')
    const times = Rates.times
    await t.rejects(times(4), TypeError, 'called bare, the method has no `this`, as without memoize')
    const callable = app.cache.memoize(async function (this: unknown, n: number) { return [this, n] }, { name: 'callable' })
    await t.rejects(callable.call('text' as never, 1), { code: 'FST_CACHE_INVALID_KEY', message: /called on a string/ })
    t.same(await callable(1), [undefined, 1])
  })
}

/** An equal, separate copy of a test argument. */
function copy (value: unknown): unknown {
  if (value instanceof Date) return new Date(value.getTime())
  if (value instanceof Map) return new Map(value)
  if (value instanceof Set) return new Set(value)
  if (Buffer.isBuffer(value)) return Buffer.from(value)
  if (value instanceof Uint8Array) return value.slice()
  if (Array.isArray(value)) return [...value]
  if (typeof value === 'object' && value !== null) return { ...value }
  return value
}
