import { tracingChannel } from 'node:diagnostics_channel'
import t from 'tap'
import { TRACING_CHANNELS, type LookupTraceContext, type PageTraceContext, type StoreTraceContext } from '../../plugin/index.js'
import { build } from '../helpers/app.js'
import { redisForFile, sleep } from '../helpers/redis.js'

const { redis } = await redisForFile(t)

type Event = 'start' | 'end' | 'asyncStart' | 'asyncEnd' | 'error'
interface Heard { name: string, context: PageTraceContext }

/** A real subscriber on the three channels, as an OpenTelemetry instrumentation would be; keeps what concerns `prefix`. */
function subscribe (prefix: string): { heard: Heard[], names: () => string[], stop: () => void } {
  const heard: Heard[] = []
  const stops: Array<() => void> = []
  for (const [kind, name] of Object.entries(TRACING_CHANNELS)) {
    const channel = tracingChannel<unknown, PageTraceContext>(name)
    const handlers = Object.fromEntries((['start', 'end', 'asyncStart', 'asyncEnd', 'error'] as Event[]).map((event) =>
      [event, (context: PageTraceContext) => { if (context.key.startsWith(prefix)) heard.push({ name: `${kind}:${event}`, context }) }])
    ) as Record<Event, (context: PageTraceContext) => void>
    channel.subscribe(handlers)
    stops.push(() => channel.unsubscribe(handlers))
  }
  return { heard, names: () => heard.map((event) => event.name), stop: () => { for (const stop of stops) stop() } }
}

async function until (done: () => boolean): Promise<void> {
  for (let i = 0; i < 300 && !done(); i++) await sleep(10)
}

t.test('the channel names are the contract\'s', async (t) => {
  t.same(TRACING_CHANNELS, { lookup: 'fastify-cache:lookup', compute: 'fastify-cache:compute', store: 'fastify-cache:store' })
})

t.test('a miss: lookup, then compute around the handler, then store; a hit: lookup only', async (t) => {
  const prefix = `${redis.prefix}trace1:`
  const app = await build(t, { redis, cache: { prefix } })
  const ran: string[] = []
  const current: { tracer?: ReturnType<typeof subscribe> } = {}
  app.get('/post/:id', { config: { cache: { ttl: 60 } } }, async (request) => {
    ran.push(`handler after ${current.tracer?.names().at(-1) ?? 'nothing'}`)
    return `post ${(request.params as { id: string }).id}`
  })
  await app.ready()
  await app.inject('/post/1') // before anyone subscribes: nothing is published
  const tracer = current.tracer = subscribe(prefix)
  t.teardown(tracer.stop)
  t.same(tracer.heard, [], 'nothing heard before subscribing')

  t.equal((await app.inject('/post/7')).headers['x-cache'], 'MISS')
  await until(() => tracer.names().includes('store:asyncEnd'))
  t.same(tracer.names(), [
    'lookup:start', 'lookup:end', 'lookup:asyncStart', 'lookup:asyncEnd',
    'compute:start', 'compute:end',
    'store:start', 'store:end', 'store:asyncStart', 'store:asyncEnd'
  ], 'the events, in order')
  t.same(ran, ['handler after nothing', 'handler after compute:start'], 'the handler runs between compute start and end')
  const [lookup, compute, store] = ['lookup', 'compute', 'store'].map((kind) => tracer.heard.filter((event) => event.name.startsWith(kind + ':')))
  for (const events of [lookup, compute, store]) {
    t.ok(events?.every((event) => event.context === events[0]?.context), 'one context object per trace')
  }
  const page = { key: `${prefix}view//post/7`, variant: '', route: '/post/:id' }
  t.same(lookup?.[0]?.context, { ...page, outcome: 'miss', result: 'miss' } satisfies LookupTraceContext)
  t.same(compute?.[0]?.context, page)
  t.same(store?.[0]?.context, { ...page, written: true, result: true } satisfies StoreTraceContext)

  tracer.heard.length = 0
  t.equal((await app.inject('/post/7')).headers['x-cache'], 'HIT')
  t.same(tracer.names(), ['lookup:start', 'lookup:end', 'lookup:asyncStart', 'lookup:asyncEnd'], 'a hit is a lookup only')
  t.equal((tracer.heard[0]?.context as LookupTraceContext).outcome, 'hit')

  tracer.heard.length = 0
  t.equal((await app.inject({ method: 'HEAD', url: '/post/8' })).statusCode, 200)
  t.same(tracer.names(), ['lookup:start', 'lookup:end', 'lookup:asyncStart', 'lookup:asyncEnd'], 'a HEAD of a cold page stores nothing')
  t.equal((tracer.heard[0]?.context as LookupTraceContext).outcome, 'pass')

  tracer.stop()
  tracer.heard.length = 0
  await app.inject('/post/9')
  await sleep(20)
  t.same(tracer.heard, [], 'nothing once unsubscribed')
})

t.test('a write refused because another instance purged the page meanwhile: written is false', async (t) => {
  const prefix = `${redis.prefix}trace2:`
  const a = await build(t, { redis, cache: { prefix } })
  const b = await build(t, { redis, cache: { prefix } })
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  a.get('/slow', { config: { cache: { ttl: 60 } } }, async () => {
    await gate
    return 'computed before the purge'
  })
  await a.ready()
  const tracer = subscribe(prefix)
  t.teardown(tracer.stop)
  const pending = a.inject('/slow')
  await until(() => tracer.names().includes('compute:start'))
  await b.cache.delete('view//slow')
  release()
  t.equal((await pending).body, 'computed before the purge')
  await until(() => tracer.names().includes('store:asyncEnd'))
  const store = tracer.heard.find((event) => event.name === 'store:asyncEnd')
  t.equal((store?.context as StoreTraceContext | undefined)?.written, false, 'the store refused it')
  t.equal((await a.inject('/slow')).headers['x-cache'], 'MISS', 'and indeed nothing was stored')
})
