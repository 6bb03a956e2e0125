import type { Test } from 'tap'
import type { CacheStore, FieldRead, PageStore } from '../../plugin/index.js'

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

type CreateStore<S> = (t: Test) => Promise<{ store: S, prefix: string }>

/**
 * The value part of the contract, which every CacheStore must pass. `createStore` gets a prefix no other run uses;
 * stores may share a server.
 */
export function runValueStoreContract (t: Test, name: string, createStore: CreateStore<CacheStore>): void {
  t.test(`${name}: value store contract`, async (t) => {
    const { store, prefix } = await createStore(t)
    const k = (key: string): string => prefix + key
    const bytes = (text: string): Buffer => Buffer.from(text)

    t.test('get of a missing key is undefined', async (t) => {
      t.equal(await store.get(k('missing')), undefined)
      t.equal(await store.has(k('missing')), false)
    })

    t.test('set then get returns the same bytes, including non-UTF-8', async (t) => {
      const binary = Buffer.from([0, 255, 254, 0x80, 0xc3, 0x28, 10, 13])
      await store.set(k('binary'), binary, 10_000)
      const got = await store.get(k('binary'))
      t.ok(Buffer.isBuffer(got))
      t.same([...(got as Buffer)], [...binary])
      t.equal(await store.has(k('binary')), true)
    })

    t.test('set overwrites', async (t) => {
      await store.set(k('over'), bytes('one'), 10_000)
      await store.set(k('over'), bytes('two'), 10_000)
      t.equal((await store.get(k('over')))?.toString(), 'two')
    })

    t.test('add sets only when absent', async (t) => {
      t.equal(await store.add(k('add'), bytes('first'), 10_000), true)
      t.equal(await store.add(k('add'), bytes('second'), 10_000), false)
      t.equal((await store.get(k('add')))?.toString(), 'first')
    })

    t.test('clear removes the prefix and nothing else', async (t) => {
      const other = prefix.replace(/:$/, '') + '-other:'
      await store.set(k('c1'), bytes('1'), 10_000)
      await store.set(k('c2'), bytes('2'), 10_000)
      await store.set(other + 'keep', bytes('keep'), 10_000)
      // A prefix with glob characters must be matched literally.
      const globby = prefix + '*['
      await store.set(globby + 'x', bytes('g'), 10_000)
      t.equal(await store.clear(globby), 1)
      t.equal((await store.get(k('c1')))?.toString(), '1', 'a literal * in a prefix matches only itself')
      t.ok(await store.clear(prefix) >= 2)
      t.equal(await store.get(k('c1')), undefined)
      t.equal(await store.get(k('c2')), undefined)
      t.equal((await store.get(other + 'keep'))?.toString(), 'keep')
      await store.delete([other + 'keep'], { tombstoneMs: 0 })
    })

    t.test('values expire after their ttl', async (t) => {
      await store.set(k('short'), bytes('x'), 60)
      t.equal((await store.get(k('short')))?.toString(), 'x')
      await sleep(150)
      t.equal(await store.get(k('short')), undefined)
      t.equal(await store.has(k('short')), false)
    })

    t.test('delete removes values and counts the ones that existed', async (t) => {
      await store.set(k('vd1'), bytes('1'), 10_000)
      await store.set(k('vd2'), bytes('2'), 10_000)
      t.equal(await store.delete([k('vd1'), k('vd2'), k('never')]), 2)
      t.equal(await store.get(k('vd1')), undefined)
      t.equal(await store.delete([]), 0)
    })
  })
}

/**
 * A locking read without its optional `now`, once that is checked: the store's clock in whole milliseconds, no later
 * than a reading of the store's clock taken after it (when the store has one).
 */
function clockless (t: Test, read: FieldRead, store: PageStore): FieldRead {
  const { now, ...rest } = read
  if (now !== undefined) {
    t.ok(Number.isSafeInteger(now) && now > 0, 'a read gives the store clock in whole ms')
    if (typeof store.now === 'function') {
      const later = store.now()
      t.resolveMatch(later.then((ms) => ms >= now), true, 'the clock a read gives is not ahead of the store\'s')
    }
  }
  return rest
}

/** The whole contract of a store that offers the page part too: the value part, then variants, versions and locks. */
export function runStoreContract (t: Test, name: string, createStore: CreateStore<PageStore>): void {
  runValueStoreContract(t, name, createStore)
  t.test(`${name}: page store contract`, async (t) => {
    const { store, prefix } = await createStore(t)
    const k = (key: string): string => prefix + key
    const bytes = (text: string): Buffer => Buffer.from(text)

    t.test('variants expire after their ttl', async (t) => {
      await store.setField(k('short-fields'), 'f', bytes('y'), { ttlMs: 60, maxFields: 10 })
      await sleep(150)
      t.equal((await store.getField(k('short-fields'), 'f')).value, undefined)
    })

    t.test('delete removes keys and counts the ones that existed', async (t) => {
      await store.set(k('d1'), bytes('1'), 10_000)
      await store.set(k('d2'), bytes('2'), 10_000)
      await store.setField(k('d3'), 'a', bytes('3'), { ttlMs: 10_000, maxFields: 10 })
      t.equal(await store.delete([k('d1'), k('d2'), k('d3'), k('never')], { tombstoneMs: 0 }), 3)
      t.equal(await store.get(k('d1')), undefined)
      t.equal((await store.getField(k('d3'), 'a')).value, undefined)
      t.equal(await store.delete([], { tombstoneMs: 0 }), 0)
    })

    t.test('fields: variants under one key, deleted together', async (t) => {
      await store.setField(k('page'), '', bytes('plain'), { ttlMs: 10_000, maxFields: 10 })
      await store.setField(k('page'), 'v1', bytes('variant one'), { ttlMs: 10_000, maxFields: 10 })
      t.equal((await store.getField(k('page'), '')).value?.toString(), 'plain')
      t.equal((await store.getField(k('page'), 'v1')).value?.toString(), 'variant one')
      t.equal((await store.getField(k('page'), 'v2')).value, undefined)
      t.equal(await store.has(k('page')), true)
      t.equal(await store.deleteField(k('page'), 'v1'), true)
      t.equal(await store.deleteField(k('page'), 'v1'), false)
      t.equal((await store.getField(k('page'), 'v1')).value, undefined)
      t.equal((await store.getField(k('page'), '')).value?.toString(), 'plain')
      t.equal(await store.delete([k('page')], { tombstoneMs: 0 }), 1)
      t.equal((await store.getField(k('page'), '')).value, undefined)
    })

    t.test('a field never shortens the life of its key', async (t) => {
      await store.setField(k('life'), 'long', bytes('L'), { ttlMs: 400, maxFields: 10 })
      await store.setField(k('life'), 'short', bytes('S'), { ttlMs: 50, maxFields: 10 })
      await sleep(120)
      t.equal((await store.getField(k('life'), 'long')).value?.toString(), 'L')
    })

    t.test('a key that collects more than maxFields variants starts over', async (t) => {
      for (let i = 0; i < 5; i++) await store.setField(k('many'), `v${i}`, bytes(String(i)), { ttlMs: 10_000, maxFields: 3 })
      const kept = await Promise.all([0, 1, 2, 3, 4].map(async (i) => (await store.getField(k('many'), `v${i}`)).value))
      const present = kept.filter((value) => value !== undefined).length
      t.ok(present <= 3, `at most 3 variants kept, got ${present}`)
      t.equal((await store.getField(k('many'), 'v4')).value?.toString(), '4', 'the newest variant is kept')
    })

    t.test('the other shape reads as missing and is replaced on write', async (t) => {
      await store.set(k('plain'), bytes('value'), 10_000)
      t.equal((await store.getField(k('plain'), '')).value, undefined)
      t.equal(await store.deleteField(k('plain'), ''), false)
      await store.setField(k('plain'), '', bytes('page'), { ttlMs: 10_000, maxFields: 10 })
      t.equal((await store.getField(k('plain'), '')).value?.toString(), 'page')
      t.equal(await store.get(k('plain')), undefined)
    })

    t.test('a delete leaves a tombstone whose version refuses writes computed before it', async (t) => {
      t.same(await store.getField(k('versioned'), ''), { value: undefined, version: 0 })
      t.equal(await store.setField(k('versioned'), '', bytes('v0'), { ttlMs: 10_000, maxFields: 10, ifVersion: 0 }), true, 'the version read is current')
      const before = await store.getField(k('versioned'), '')
      t.equal(before.value?.toString(), 'v0')
      t.equal(await store.delete([k('versioned')], { tombstoneMs: 10_000 }), 1)
      const after = await store.getField(k('versioned'), '')
      t.equal(after.value, undefined)
      t.ok(after.version > before.version, 'the version moved on')
      t.equal(await store.setField(k('versioned'), '', bytes('stale'), { ttlMs: 10_000, maxFields: 10, ifVersion: before.version }), false, 'a stale write is refused')
      t.equal((await store.getField(k('versioned'), '')).value, undefined)
      t.equal(await store.setField(k('versioned'), '', bytes('fresh'), { ttlMs: 10_000, maxFields: 10, ifVersion: after.version }), true)
      t.equal((await store.getField(k('versioned'), '')).value?.toString(), 'fresh')
      t.equal(await store.setField(k('versioned'), 'x', bytes('unchecked'), { ttlMs: 10_000, maxFields: 10 }), true, 'no version: always written')

      t.equal(await store.delete([k('never-existed')], { tombstoneMs: 10_000 }), 0, 'a delete of nothing holds nothing')
      t.equal(await store.setField(k('never-existed'), '', bytes('stale'), { ttlMs: 10_000, maxFields: 10, ifVersion: 0 }), false,
        'but it still refuses a write computed before it')
      t.equal(await store.has(k('never-existed')), false, 'a tombstone is not an entry')
      t.same(await store.fields(k('never-existed')), [])
      t.equal(await store.add(k('never-existed'), bytes('added'), 10_000), true, 'add treats a tombstone as absent')
      t.equal((await store.get(k('never-existed')))?.toString(), 'added')

      await store.setField(k('keeps-version'), 'a', bytes('1'), { ttlMs: 10_000, maxFields: 2 })
      await store.delete([k('keeps-version')], { tombstoneMs: 10_000 })
      const version = (await store.getField(k('keeps-version'), 'a')).version
      for (const field of ['a', 'b', 'c']) await store.setField(k('keeps-version'), field, bytes(field), { ttlMs: 10_000, maxFields: 2 })
      t.equal((await store.getField(k('keeps-version'), 'c')).version, version, 'starting over keeps the version')
    })

    t.test('a write started before a delete is refused by ifNotPurgedSince', async (t) => {
      const startedAt = Date.now() - 5_000
      await store.setField(k('tag-index'), 'member-1', bytes(''), { ttlMs: 10_000 })
      await store.delete([k('tag-index')], { tombstoneMs: 10_000 })
      t.equal(await store.setField(k('tag-index'), 'member-2', bytes(''), { ttlMs: 10_000, ifNotPurgedSince: startedAt }), false,
        'a render that began before the delete may not add itself')
      t.same(await store.fields(k('tag-index')), [])
      t.equal(await store.setField(k('tag-index'), 'member-3', bytes(''), { ttlMs: 10_000, ifNotPurgedSince: Date.now() + 5_000 }), true,
        'one that began after it may')
      t.same(await store.fields(k('tag-index')), ['member-3'])
      t.equal(await store.setField(k('never-purged'), 'm', bytes(''), { ttlMs: 10_000, ifNotPurgedSince: Date.now() }), true)
    })

    t.test('fields lists the variants of a key', async (t) => {
      await store.setField(k('index'), 'm1', bytes(''), { ttlMs: 10_000 })
      await store.setField(k('index'), 'm2', bytes(''), { ttlMs: 10_000 })
      t.same((await store.fields(k('index'))).sort(), ['m1', 'm2'])
      t.same(await store.fields(k('no-such-index')), [])
      await store.set(k('plain-for-fields'), bytes('x'), 10_000)
      t.same(await store.fields(k('plain-for-fields')), [])
    })

    t.test('a missing variant is locked by the first reader only, and released by its write', async (t) => {
      const lock = (token: string): { token: string, ttlMs: number } => ({ token, ttlMs: 10_000 })
      const first = await store.getField(k('locked'), 'v', { lock: lock('process-a:1') })
      t.same(clockless(t, first, store), { value: undefined, version: 0, lock: 'taken' })
      const second = await store.getField(k('locked'), 'v', { lock: lock('process-b:1') })
      t.equal(second.lock, 'held', 'a second reader sees the lock')
      t.equal(await store.lockField(k('locked'), 'v', lock('process-b:2')), false, 'and cannot take it')
      t.equal((await store.getField(k('locked'), 'other', { lock: lock('process-b:3') })).lock, 'taken', 'locks are per variant')
      t.same(await store.fields(k('locked')), [], 'locks are not variants')
      t.equal(await store.has(k('locked')), false, 'a key holding only locks holds no data')
      t.equal(await store.setField(k('locked'), 'v', bytes('page'), { ttlMs: 10_000, maxFields: 10, ifVersion: 0, unlock: 'process-b:1' }), true)
      t.equal((await store.getField(k('locked'), 'v', { lock: lock('process-b:4') })).lock, 'held', "another's token does not unlock")
      t.equal(await store.setField(k('locked'), 'v', bytes('page'), { ttlMs: 10_000, maxFields: 10, ifVersion: 0, unlock: 'process-a:1' }), true)
      const after = await store.getField(k('locked'), 'v', { lock: lock('process-b:5') })
      t.same(clockless(t, after, store), { value: bytes('page'), version: 0, lock: 'free' }, 'the write released its lock; a stored variant is not locked')
      t.equal(await store.lockField(k('locked'), 'v', lock('process-b:6')), true, 'a stored variant can be locked for a refresh')
      t.equal(await store.unlockField(k('locked'), 'v', 'process-a:1'), false, 'only by its holder')
      t.equal(await store.unlockField(k('locked'), 'v', 'process-b:6'), true)
      t.equal(await store.unlockField(k('locked'), 'v', 'process-b:6'), false, 'once')
      t.equal(await store.unlockField(k('locked'), 'other', 'process-b:3'), true)
    })

    t.test('a lock expires, and a delete drops it', async (t) => {
      t.equal((await store.getField(k('expiring'), '', { lock: { token: 'a:1', ttlMs: 60 } })).lock, 'taken')
      t.equal((await store.getField(k('expiring'), '', { lock: { token: 'b:1', ttlMs: 60 } })).lock, 'held')
      await sleep(120)
      t.equal((await store.getField(k('expiring'), '', { lock: { token: 'b:2', ttlMs: 10_000 } })).lock, 'taken', 'after its ttl')
      await store.delete([k('expiring')], { tombstoneMs: 10_000 })
      const purged = await store.getField(k('expiring'), '', { lock: { token: 'c:1', ttlMs: 10_000 } })
      t.equal(purged.lock, 'taken', 'the purge dropped the old lock')
      t.equal(purged.version, 1)
      t.equal(await store.setField(k('expiring'), '', bytes('x'), { ttlMs: 10_000, maxFields: 10, ifVersion: 0, unlock: 'b:2' }), false,
        'the holder from before the purge is refused')
    })

    t.test('a stored variant is never lost to a lock, and foreign data carries none', async (t) => {
      await store.setField(k('many-locks'), 'keep', bytes('kept'), { ttlMs: 10_000, maxFields: 2 })
      for (let i = 0; i < 5; i++) t.equal((await store.getField(k('many-locks'), `cold${i}`, { lock: { token: `t:${i}`, ttlMs: 10_000 } })).lock, 'taken')
      await store.setField(k('many-locks'), 'second', bytes('2'), { ttlMs: 10_000, maxFields: 2 })
      t.equal((await store.getField(k('many-locks'), 'keep')).value?.toString(), 'kept', 'locks do not count against maxFields')
      t.same((await store.fields(k('many-locks'))).sort(), ['keep', 'second'])
      await store.set(k('plain-value'), bytes('not ours'), 10_000)
      const foreign = await store.getField(k('plain-value'), '', { lock: { token: 'f:1', ttlMs: 10_000 } })
      t.equal(foreign.value, undefined)
      t.equal(foreign.lock, undefined, 'no lock on foreign data')
    })

    t.test('list shows keys under the prefix with their ttl', async (t) => {
      t.ok(typeof store.list === 'function')
      await store.set(k('l1'), bytes('1'), 60_000)
      await store.setField(k('l2'), 'a', bytes('2'), { ttlMs: 60_000, maxFields: 10 })
      await store.setField(k('l2'), 'b', bytes('3'), { ttlMs: 60_000, maxFields: 10 })
      const listed = await store.list!(prefix, 100)
      const l1 = listed.find((info) => info.key === k('l1'))
      const l2 = listed.find((info) => info.key === k('l2'))
      t.ok(l1 !== undefined && l1.ttlMs > 50_000 && l1.ttlMs <= 61_000, `value with ttl (${l1?.ttlMs})`)
      t.equal(l1?.variants, undefined)
      t.equal(l2?.variants, 2)
      t.ok(listed.every((info) => info.key.startsWith(prefix)))
      t.equal((await store.list!(prefix, 1)).length, 1, 'limit is honoured')
      await store.delete([k('l1')], { tombstoneMs: 10_000 })
      t.notOk((await store.list!(prefix, 100)).some((info) => info.key === k('l1')), 'tombstones are not listed')
      await store.clear(prefix)
    })

    t.test('clear removes pages under the prefix too (the value part checks the prefix is matched literally)', async (t) => {
      await store.setField(k('cleared-page'), 'f', bytes('2'), { ttlMs: 10_000, maxFields: 10 })
      t.ok(await store.clear(prefix) >= 1)
      t.equal((await store.getField(k('cleared-page'), 'f')).value, undefined)
    })
  })
}
