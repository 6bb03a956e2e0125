// httpPurger against a real local HTTP server that records what it is sent, answers as told, and fails on purpose.
import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { httpPurger, type PurgeEvent, type PurgeLog } from '../../plugin/index.js'
import { purgeBatches } from '../../plugin/http-purger.js'
import { build } from '../helpers/app.js'

interface Recorded {
  method: string
  url: string
  headers: IncomingMessage['headers']
}

/** A purge endpoint: records each request, and answers with the next of `script` (a status, or 'drop' the socket). */
async function purgeServer (
  t: { teardown: (fn: () => unknown) => void }, script: Array<number | 'drop'> = []
): Promise<{ url: string, requests: Recorded[] }> {
  const requests: Recorded[] = []
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    requests.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers })
    const next = script.shift() ?? 200
    if (next === 'drop') {
      request.socket.destroy()
      return
    }
    response.statusCode = next
    response.end(`status ${next}`)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    server.closeAllConnections()
    server.close()
    await once(server, 'close')
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/purge`, requests }
}

/** A logger that keeps what it is told. */
function recordingLog (): PurgeLog & { warnings: string[], errors: Array<Record<string, unknown>> } {
  const warnings: string[] = []
  const errors: Array<Record<string, unknown>> = []
  return {
    warnings,
    errors,
    warn: (_details, message) => { warnings.push(message) },
    error: (details, message) => { errors.push({ ...details, message }) }
  }
}

/** The sleeps asked for, in order, without waiting for any of them. */
function recordingSleep (): { sleep: (ms: number) => Promise<void>, slept: number[] } {
  const slept: number[] = []
  return { slept, sleep: async (ms) => { slept.push(ms) } }
}

function event (tokens: string[], all = false): PurgeEvent {
  return { keys: [], tags: [], all, tokens }
}

t.test('sends PURGE with the tokens, space-separated, in the xkey header', async (t) => {
  const { url, requests } = await purgeServer(t)
  const purge = httpPurger({ url })
  t.same(await purge(event(['view//', 'post:1'])), { sent: 1, failed: 0 })
  t.equal(requests.length, 1)
  t.equal(requests[0]?.method, 'PURGE')
  t.equal(requests[0]?.url, '/purge')
  t.equal(requests[0]?.headers.xkey, 'view// post:1')
  t.same(await purge(event([])), { sent: 0, failed: 0 }, 'nothing to purge: no request')
  t.equal(requests.length, 1)
})

t.test('method, header and extra headers are the deployment\'s', async (t) => {
  const { url, requests } = await purgeServer(t)
  const purge = httpPurger({ url: new URL(url), method: 'DELETE', tagHeader: 'x-purge-keys', headers: { authorization: 'Bearer s3cret' } })
  await purge(event(['a']))
  t.equal(requests[0]?.method, 'DELETE')
  t.equal(requests[0]?.headers['x-purge-keys'], 'a')
  t.equal(requests[0]?.headers.authorization, 'Bearer s3cret')
  t.equal(requests[0]?.headers.xkey, undefined)
})

t.test('tokens are batched so that no header passes maxHeaderBytes', async (t) => {
  const { url, requests } = await purgeServer(t)
  const tokens = Array.from({ length: 30 }, (_, i) => String(i).padStart(100, 'k')) // 101 bytes each with a space
  const purge = httpPurger({ url, maxHeaderBytes: 1024 })
  t.same(await purge(event(tokens)), { sent: 3, failed: 0 })
  const sent = requests.map((request) => String(request.headers.xkey))
  t.same(sent.map((header) => header.split(' ').length), [10, 10, 10], '10 tokens and 9 spaces: 1,009 bytes')
  t.ok(sent.every((header) => Buffer.byteLength(header) <= 1024))
  t.same(sent.join(' ').split(' '), tokens, 'every token once, in order')
})

t.test('purgeBatches: a batch fills up to the limit exactly', async (t) => {
  t.same(purgeBatches(['aaaa', 'bbbb', 'cccc'], 9), ['aaaa bbbb', 'cccc'])
  t.same(purgeBatches(['aaaa', 'bbbb', 'cccc'], 8), ['aaaa', 'bbbb', 'cccc'])
  t.same(purgeBatches([], 8), [])
})

t.test('all: true sends the catch-all token the plugin put in every tag list', async (t) => {
  const { url, requests } = await purgeServer(t)
  const app = await build(t, { cache: { prefix: 'shop:', onPurge: httpPurger({ url }) } })
  await app.cache.clear()
  t.equal(requests[0]?.headers.xkey, 'shop:')
})

t.test('a failed try is retried with exponential backoff, on no clock', async (t) => {
  const { url, requests } = await purgeServer(t, [503, 'drop', 429])
  const { sleep, slept } = recordingSleep()
  const log = recordingLog()
  const purge = httpPurger({ url, sleep, log, backoffMs: 50 })
  t.same(await purge(event(['post:1'])), { sent: 1, failed: 0 })
  t.equal(requests.length, 4, '503, a dropped connection and 429, then 200')
  t.ok(requests.every((request) => request.headers.xkey === 'post:1'), 'the same batch each time')
  t.same(slept, [50, 100, 200])
  t.equal(log.warnings.length, 3)
  t.same(log.errors, [])
})

t.test('past its retries, a batch is logged and given up; the next batch still goes', async (t) => {
  const { url, requests } = await purgeServer(t, [500, 500, 500])
  const { sleep, slept } = recordingSleep()
  const log = recordingLog()
  const purge = httpPurger({ url, sleep, log, retries: 2, maxHeaderBytes: 1024 })
  const tokens = ['a'.repeat(1000), 'b'.repeat(1000)]
  t.same(await purge(event(tokens)), { sent: 1, failed: 1 }, 'it resolves: a purge never throws into the app')
  t.equal(requests.length, 4)
  t.same(slept, [100, 200], 'the default backoff, doubling')
  t.equal(log.errors.length, 1)
  t.match(log.errors[0], { status: 500, tries: 3, xkey: tokens[0], message: /edge purge failed/ })
})

t.test('a refusal (4xx) is not retried', async (t) => {
  const { url, requests } = await purgeServer(t, [403])
  const { sleep, slept } = recordingSleep()
  const log = recordingLog()
  t.same(await httpPurger({ url, sleep, log })(event(['x'])), { sent: 0, failed: 1 })
  t.equal(requests.length, 1)
  t.same(slept, [])
  t.match(log.errors[0], { status: 403, tries: 1 })
})

t.test('nothing listening: retried, then logged, and it resolves', async (t) => {
  const { url } = await purgeServer(t)
  const closed = url.replace(/:\d+\//, ':1/') // port 1: nothing listens there
  const { sleep, slept } = recordingSleep()
  const log = recordingLog()
  t.same(await httpPurger({ url: closed, sleep, log, retries: 1 })(event(['x'])), { sent: 0, failed: 1 })
  t.same(slept, [100])
  t.match(log.errors[0], { status: 'no answer', tries: 2 })
})

t.test('the plugin gives the purger its logger; without one it logs to the console', async (t) => {
  const { url } = await purgeServer(t, [403, 403])
  const log = recordingLog()
  const purge = httpPurger({ url })
  await purge(event(['x']), { log: log as never })
  t.equal(log.errors.length, 1, 'the logger given with the event')
  const printed: unknown[][] = []
  const consoleError = console.error
  console.error = (...args: unknown[]) => { printed.push(args) }
  try {
    await purge(event(['y']))
    t.same(await purge({ keys: ['view//'], tags: [], all: false } as never), { sent: 0, failed: 1 }, 'an event without tokens')
  } finally {
    console.error = consoleError
  }
  t.equal(printed.length, 2)
  t.match(String(printed[0]?.[0]), /edge purge failed/)
  t.match(String(printed[1]?.[0]), /without tokens/)
  const warned: unknown[][] = []
  const consoleWarn = console.warn
  console.warn = (...args: unknown[]) => { warned.push(args) }
  const { url: flaky } = await purgeServer(t, [503])
  try {
    t.same(await httpPurger({ url: flaky, sleep: async () => {} })(event(['z'])), { sent: 1, failed: 0 })
  } finally {
    console.warn = consoleWarn
  }
  t.match(String(warned[0]?.[0]), /retrying/)
})

t.test('options are checked when the purger is made', async (t) => {
  const bad: Array<[string, unknown]> = [
    ['httpPurger', undefined],
    ['httpPurger.url', { url: 'ftp://cdn.example' }],
    ['httpPurger.url', { url: 'not a url' }],
    ['httpPurger.url', {}],
    ['httpPurger.method', { url: 'http://127.0.0.1/', method: 'PUR GE' }],
    ['httpPurger.method', { url: 'http://127.0.0.1/', method: 42 }],
    ['httpPurger.tagHeader', { url: 'http://127.0.0.1/', tagHeader: 'x key' }],
    ['httpPurger.maxHeaderBytes', { url: 'http://127.0.0.1/', maxHeaderBytes: 100 }],
    ['httpPurger.retries', { url: 'http://127.0.0.1/', retries: -1 }],
    ['httpPurger.retries', { url: 'http://127.0.0.1/', retries: 1.5 }],
    ['httpPurger.backoffMs', { url: 'http://127.0.0.1/', backoffMs: '100' }],
    ['httpPurger.timeoutMs', { url: 'http://127.0.0.1/', timeoutMs: 0 }]
  ]
  for (const [option, input] of bad) {
    t.throws(() => httpPurger(input as never), { code: 'FST_CACHE_INVALID_OPTION', option }, `${option}: ${JSON.stringify(input)}`)
  }
  t.equal(typeof httpPurger({ url: 'https://cdn.example/purge', retries: 0, backoffMs: 0 }), 'function')
})
