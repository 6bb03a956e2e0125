// The package as a user gets it: `npm pack`ed, installed from the tarball into apps outside this repository beside
// the lowest supported and the latest fastify 5, type-checked under four module settings, and run. One npm install
// per fastify version serves every check on it.
import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { cp, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { redisForTest } from '../helpers/redis.js'

/** The lowest fastify the README promises; fastify-plugin's `fastify: '5.x'` check lets every 5.x through. */
const LOWEST_FASTIFY = '5.0.0'
const TYPE_CONFIGS = ['nodenext', 'node16', 'bundler', 'commonjs'] as const
/** What `dist/plugin` imports: a user's app gets these and nothing else (no fastify, nothing of the demo). */
const RUNTIME_DEPENDENCIES = ['@fastify/accept-negotiator', '@fastify/error', 'cluster-key-slot', 'fastify-plugin', 'ioredis', 'lru-cache']

const root = fileURLToPath(new URL('../..', import.meta.url))
const consumerFixture = fileURLToPath(new URL('./consumer-app', import.meta.url))
const tsc = join(root, 'node_modules/typescript/bin/tsc')

// Cold npm caches make the installs slow; the file's own deadline covers that rather than the default 120 s.
t.setTimeout(15 * 60_000)

// Without the `npm_*` variables of the `npm test` around us (this repository's prefix, its legacy-peer-deps), so the
// consumers' npm behaves as in a user's own project.
const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env)
  .filter(([name]) => !/^npm_/i.test(name) && name !== 'INIT_CWD' && name !== 'REDIS_URL'))

interface Run { code: number, stdout: string, stderr: string }

async function run (command: string, args: string[], cwd: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<Run> {
  return await new Promise((resolve) => {
    execFile(command, args, { cwd, env: { ...env, ...extraEnv }, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1
      resolve({ code, stdout, stderr })
    })
  })
}

/** The JSON line an app printed last, or what it printed instead (an error on stderr), for the failure's diff. */
function printed ({ stdout, stderr }: Run): unknown {
  try {
    return JSON.parse(stdout.trim().split('\n').at(-1) ?? '')
  } catch {
    return { stdout, stderr }
  }
}

const work = await mkdtemp(join(tmpdir(), 'fastify-cache-consumer-'))
t.teardown(async () => await rm(work, { recursive: true, force: true }))
const redis = await redisForTest(t)
const typesNode = (JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> })
  .devDependencies['@types/node']

// `npm pack` builds first (prepack), so the tarball is what `npm publish` would upload.
const pack = await run('npm', ['pack', '--json', '--pack-destination', work], root)
const packed = (JSON.parse(pack.code === 0 ? pack.stdout : '[]') as Array<{ filename: string, files: Array<{ path: string }> }>)[0]

t.test('npm pack: the built plugin, its types and the docs; no source maps, no demo', async (t) => {
  t.equal(pack.code, 0, `npm pack succeeded${pack.code === 0 ? '' : `:\n${pack.stderr}`}`)
  const files = packed?.files.map((file) => file.path) ?? []
  for (const file of ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'dist/plugin/index.js', 'dist/plugin/index.d.ts',
    'dist/plugin/prometheus.js', 'dist/plugin/prometheus.d.ts']) {
    t.ok(files.includes(file), `ships ${file}`)
  }
  t.same(files.filter((file) => file.endsWith('.map')), [], 'no source maps pointing at sources that are not shipped')
  t.same(files.filter((file) => !/^(package\.json|README\.md|LICENSE|CHANGELOG\.md|dist\/plugin\/.+\.(js|d\.ts))$/.test(file)), [],
    'nothing else')
})

async function runExample (t: Test, dir: string): Promise<void> {
  const child = spawn(process.execPath, ['out/example/index.js'], {
    cwd: dir, env: { ...env, PORT: '0', HOST: '127.0.0.1' }, stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => { child.kill() })
  let output = ''
  const listening = new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      const address = /Server listening at (http:\/\/[^"\s]+)/.exec(output)?.[1]
      if (address !== undefined) resolve(address)
    })
    child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
    child.once('exit', (code) => reject(new Error(`the example exited (${code}) before listening:\n${output}`)))
  })
  const address = await listening
  const first = await fetch(`${address}/time`)
  const firstBody = await first.text()
  const second = await fetch(`${address}/time`)
  t.equal(first.headers.get('x-cache'), 'MISS', 'the example: the first request computes the page')
  t.equal(second.headers.get('x-cache'), 'HIT', 'the example: the second is served from the cache')
  t.equal(await second.text(), firstBody, 'the example: the same page')
  child.kill()
  await once(child, 'exit')
}

async function checkConsumer (t: Test, fastifySpec: string): Promise<string> {
  const dir = join(work, fastifySpec.replace(/\W+/g, '-'))
  await cp(consumerFixture, dir, { recursive: true })
  await mkdir(join(dir, 'example'))
  await cp(join(root, 'example/index.ts'), join(dir, 'example/index.ts'))
  const install = await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund',
    join(work, packed?.filename ?? 'missing.tgz'), fastifySpec, `@types/node@${typesNode}`], dir)
  t.equal(install.code, 0, `npm install of the tarball and ${fastifySpec}${install.code === 0 ? '' : `:\n${install.stderr}`}`)

  const installed = JSON.parse(await readFile(join(dir, 'node_modules/fastify-cache/package.json'), 'utf8')) as
    { dependencies?: Record<string, string> }
  t.same(Object.keys(installed.dependencies ?? {}).sort(), RUNTIME_DEPENDENCIES, 'the plugin depends only on what it imports')
  t.notOk(existsSync(join(dir, 'node_modules/fastify-cache/node_modules/fastify')),
    'no second fastify nested under the plugin: the app\'s own fastify gets the module augmentation')

  // The metrics subpath resolves to the built file; its peer, prom-client, is optional, so it is not installed.
  const resolved = await run(process.execPath, ['--input-type=module', '-e', "console.log(import.meta.resolve('fastify-cache/prometheus'))"], dir)
  t.match(resolved.stdout.trim(), /\/node_modules\/fastify-cache\/dist\/plugin\/prometheus\.js$/, 'fastify-cache/prometheus resolves')
  t.notOk(existsSync(join(dir, 'node_modules/prom-client')), 'prom-client, an optional peer, is not installed with the plugin')

  for (const config of TYPE_CONFIGS) {
    const result = await run(process.execPath, [tsc, '-p', `tsconfig.${config}.json`], dir)
    // The apps mark a typo under `satisfies RouteCacheOptions`, and wrong option types, with @ts-expect-error.
    t.equal(result.stdout, '', `module ${config}: no type errors, and every @ts-expect-error is one`)
    t.equal(result.code, 0, `module ${config}: tsc succeeds`)
  }

  t.same(printed(await run(process.execPath, ['out/esm/app.js'], dir)),
    { xCache: ['MISS', 'HIT', 'MISS'], body: { post: '7' }, deleted: true, key: 'view//post/7' },
    'memory store: MISS, HIT, and after delete(\'view//post/7\') a MISS again; pageKey builds that key from a URL')
  t.same(printed(await run(process.execPath, ['out/esm/app.js'], dir, { REDIS_URL: redis.url, CACHE_PREFIX: redis.prefix })),
    { xCache: ['MISS', 'HIT', 'MISS'], body: { post: '7' }, deleted: true, key: 'view//post/7' },
    'Redis from a URL (the plugin\'s own ioredis client): the same')

  const cjs = await run(process.execPath, ['cjs/out/app.js'], dir)
  if ((process.features as { require_module?: boolean }).require_module === true) {
    t.same(printed(cjs), { xCache: ['MISS', 'HIT'], deleted: true }, 'CommonJS: require(esm) loads the plugin')
  } else {
    t.match(cjs.stderr, /ERR_REQUIRE_ESM/, `CommonJS on Node ${process.version}: require(esm) is not available, as the README says`)
  }

  await runExample(t, dir)
  return (JSON.parse(await readFile(join(dir, 'node_modules/fastify/package.json'), 'utf8')) as { version: string }).version
}

t.test(`a consumer app on the lowest supported fastify, ${LOWEST_FASTIFY}`, async (t) => {
  t.equal(await checkConsumer(t, `fastify@${LOWEST_FASTIFY}`), LOWEST_FASTIFY)
})

t.test('a consumer app on the latest fastify 5', async (t) => {
  t.match(await checkConsumer(t, 'fastify@5'), /^5\.\d+\.\d+$/)
})
