import t from 'tap'
import { digest } from '../../plugin/keyspace.js'
import { memoArgsKey } from '../../plugin/memo-args.js'
import { isVariantOfArgs, memoVariant } from '../../plugin/memo-variant.js'

t.test('a call without an object is keyed by its arguments alone', async (t) => {
  const bare = memoVariant(undefined, [1, null])
  t.equal(bare, digest(memoArgsKey([1, null])))
  t.equal(memoVariant(null, [1, null]), bare, 'a null `this` is no object either')
  t.not(memoVariant(undefined, [1, undefined]), bare)
  t.throws(() => memoVariant(undefined, [() => 1]), { code: 'FST_CACHE_INVALID_KEY' }, 'refused arguments stay refused')
})

t.test('a call on an object is keyed by that object and its arguments', async (t) => {
  const [a, b] = [{ same: true }, { same: true }]
  const bare = memoVariant(undefined, [1])
  const ofA = memoVariant(a, [1])
  t.equal(memoVariant(a, [1]), ofA, 'the same object keeps its id')
  t.not(memoVariant(b, [1]), ofA, 'an equal but distinct object is another instance')
  t.ok(ofA.endsWith('.' + bare), 'the argument part is the bare call\'s variant')
  t.not(memoVariant(a, [2]), ofA)
  class Static { static run (): void {} }
  t.ok(memoVariant(Static, [1]).endsWith('.' + bare), 'a function (a class, for a static method) is an object too')
  t.throws(() => memoVariant('text', [1]), { code: 'FST_CACHE_INVALID_KEY', message: /called on a string/ })
  t.throws(() => memoVariant(5, [1]), { code: 'FST_CACHE_INVALID_KEY', message: /called on a number/ })
})

t.test('object ids carry a random part of their own, so that processes sharing a store never share one', async (t) => {
  // Two fresh copies of the module stand for two processes: each numbers its first object 1.
  const fresh = async (name: string): Promise<typeof import('../../plugin/memo-variant.js')> =>
    await import(new URL(`../../plugin/memo-variant.js?process=${name}`, import.meta.url).href)
  const [one, two] = [await fresh('one'), await fresh('two')]
  const [inOne, inTwo] = [one.memoVariant({}, [1]), two.memoVariant({}, [1])]
  t.not(inOne, inTwo)
  t.equal(inOne.length, inTwo.length, 'same counter, different random part')
})

t.test('isVariantOfArgs finds a call\'s entries on every object, and nothing else', async (t) => {
  const bare = memoVariant(undefined, ['x'])
  t.ok(isVariantOfArgs(bare, bare))
  t.ok(isVariantOfArgs(memoVariant({}, ['x']), bare))
  t.notOk(isVariantOfArgs(memoVariant({}, ['y']), bare))
  t.notOk(isVariantOfArgs(memoVariant(undefined, ['y']), bare))
  t.notOk(isVariantOfArgs(' lock ' + memoVariant({}, ['x']), bare), 'a lock is the store\'s own field, never a variant')
  t.notOk(isVariantOfArgs('x' + bare, bare), 'only a whole digest after the dot counts')
})
