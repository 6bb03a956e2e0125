import t, { type Test } from 'tap'
import fc from 'fast-check'
import { memoArgsKey } from '../../plugin/memo-args.js'

/** Whether two argument lists key alike. */
function sameKey (a: unknown[], b: unknown[]): boolean {
  return memoArgsKey(a) === memoArgsKey(b)
}

t.test('JSON\'s collisions are distinct keys', async (t) => {
  const distinct: Array<[unknown, unknown]> = [
    [undefined, null],
    [NaN, null],
    [Infinity, null],
    [-Infinity, Infinity],
    [-0, 0],
    [1n, 1],
    [1n, '1'],
    [new Date(0), '1970-01-01T00:00:00.000Z'],
    [new Date(0), 0],
    [new Map([['a', 1]]), {}],
    [new Map([['a', 1]]), { a: 1 }],
    [new Set([1]), {}],
    [new Set([1]), [1]],
    [Buffer.from('a'), { type: 'Buffer', data: [97] }],
    [Buffer.from('a'), new Uint8Array([97])],
    [new Uint8Array([1]), new Int8Array([1])],
    [new Float64Array([0]), new Float64Array([-0])],
    [{ a: undefined }, {}],
    [[undefined], [null]],
    // eslint-disable-next-line no-sparse-arrays
    [[, 1], [undefined, 1]],
    ['undefined', undefined],
    ['hole', undefined],
    ['1n', 1n],
    ['\ud800', '\ufffd'],
    ['\ud800', '\udc00']
  ]
  for (const [a, b] of distinct) {
    t.not(memoArgsKey([a]), memoArgsKey([b]), `${memoArgsKey([a])} vs ${memoArgsKey([b])}`)
  }
  t.not(memoArgsKey([1]), memoArgsKey([1, undefined]), 'a trailing undefined is an argument')
  t.not(memoArgsKey([1, null]), memoArgsKey([1, undefined]))
})

t.test('equal arguments are one key', async (t) => {
  t.ok(sameKey([{ a: 1, b: 2 }], [{ b: 2, a: 1 }]), 'object key order does not matter')
  const bare = Object.assign(Object.create(null) as object, { a: 1 })
  t.ok(sameKey([bare], [{ a: 1 }]), 'a null-prototype object is a plain object')
  t.ok(sameKey([NaN], [0 / 0]), 'NaN is NaN')
  t.ok(sameKey([new Date(5)], [new Date(5)]))
  t.ok(sameKey([new Date(NaN)], [new Date('nope')]), 'invalid dates are alike')
  t.ok(sameKey([new Map<unknown, unknown>([[1, 'a'], [{ k: 1 }, 'b']])], [new Map<unknown, unknown>([[{ k: 1 }, 'b'], [1, 'a']])]),
    'Map entry order does not matter')
  t.ok(sameKey([new Set([1, 'a'])], [new Set(['a', 1])]), 'Set order does not matter')
  const bytes = Buffer.from('hello world')
  t.ok(sameKey([bytes.subarray(6)], [Buffer.from('world')]), 'a view keys its own bytes, not its whole buffer')
  const shared = { a: [1] }
  t.ok(sameKey([shared, [shared]], [{ a: [1] }, [{ a: [1] }]]), 'an object met twice (not a cycle) is fine')
  t.ok(sameKey([JSON.parse('{"__proto__": 1}')], [JSON.parse('{"__proto__": 1}')]))
  t.not(memoArgsKey([JSON.parse('{"__proto__": 1}')]), memoArgsKey([{}]), 'an own __proto__ key is a key')
})

t.test('the key reads like the arguments', async (t) => {
  // eslint-disable-next-line no-sparse-arrays
  t.equal(memoArgsKey([undefined, null, -0, NaN, -Infinity, 2n, 'a"b', [1, , 2], { b: 1, a: true }]),
    '[undefined,null,-0,NaN,-Infinity,2n,"a\\"b",[1,hole,2],{"a":true,"b":1}]')
  t.equal(memoArgsKey([new Date(0), new Map([['k', new Set([2, 1])]]), Buffer.from('hi'), new Uint16Array([1])]),
    '[Date(0),Map{"k":Set[1,2]},Buffer<aGk=>,Uint16Array<AQA=>]')
  t.equal(memoArgsKey([]), '[]')
})

t.test('arguments that cannot be compared are refused, naming the argument', async (t) => {
  class Point { x = 1 }
  class MyMap extends Map {}
  const cycle: Record<string, unknown> = { a: {} }
  ;(cycle.a as Record<string, unknown>).back = cycle
  const cyclicArray: unknown[] = []
  cyclicArray.push(cyclicArray)
  const refused: Array<[unknown[], RegExp]> = [
    [[1, () => 1], /args\[1\] is a function/],
    [[Symbol('s')], /args\[0\] is a symbol/],
    [[{ user: new Point() }], /args\[0\]\.user is an instance of Point/],
    [[{ 'odd key': /x/ }], /args\[0\]\["odd key"\] is an instance of RegExp/],
    [[new MyMap()], /args\[0\] is an instance of MyMap/],
    [[Object.create(new Point()) as object], /args\[0\] is an instance of Point/],
    [[Object.create(Object.create(null) as object) as object], /args\[0\] is an instance of a class/],
    [[Object.create(Date.prototype) as object], /args\[0\] is an instance of Date/],
    [[new (class extends Uint8Array {})(1)], /args\[0\] is an instance of a class/],
    [[new DataView(new ArrayBuffer(1))], /is an instance of DataView/],
    [[Object('boxed') as object], /is an instance of String/],
    [[Promise.resolve(1)], /is an instance of Promise/],
    [[cycle], /args\[0\]\.a\.back refers back to an object that contains it \(a cycle\)/],
    [[cyclicArray], /args\[0\]\[0\] refers back/],
    [[{ [Symbol('k')]: 1 }], /args\[0\] has symbol keys/],
    [[new Map([[1, { f: () => 1 }]])], /args\[0\] \(map value #0\)\.f is a function/],
    [[new Map([[() => 1, 1]])], /args\[0\] \(map key #0\) is a function/],
    [[new Set([1, Symbol('s')])], /args\[0\] \(set element #1\) is a symbol/]
  ]
  for (const [args, message] of refused) {
    t.throws(() => memoArgsKey(args), { code: 'FST_CACHE_INVALID_KEY', message }, String(message))
  }
  const hidden = Object.defineProperty({ a: 1 }, Symbol('hidden'), { value: 1, enumerable: false })
  t.equal(memoArgsKey([hidden]), memoArgsKey([{ a: 1 }]), 'a non-enumerable symbol key is ignored, like other hidden properties')
})

// The property: keys are equal exactly when the argument lists are equal under the semantics below, written here
// independently of the encoder.

type Kind = 'plain' | 'array' | 'date' | 'map' | 'set' | 'binary'

function kindOf (value: object): Kind {
  if (Array.isArray(value)) return 'array'
  if (value instanceof Date) return 'date'
  if (value instanceof Map) return 'map'
  if (value instanceof Set) return 'set'
  if (ArrayBuffer.isView(value)) return 'binary'
  return 'plain'
}

/** Whether `b` holds, for each member of `a`, an equal member not yet matched: multiset equality. */
function sameMembers<T> (a: T[], b: T[], equal: (x: T, y: T) => boolean): boolean {
  if (a.length !== b.length) return false
  const left = [...b]
  return a.every((x) => {
    const index = left.findIndex((y) => equal(x, y))
    if (index === -1) return false
    left.splice(index, 1)
    return true
  })
}

function equalArgs (a: unknown, b: unknown): boolean {
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null) return Object.is(a, b)
  const kind = kindOf(a)
  if (kind !== kindOf(b)) return false
  switch (kind) {
    case 'array': {
      const [x, y] = [a as unknown[], b as unknown[]]
      return x.length === y.length && Array.from(x, (_, i) => (i in x) === (i in y) && equalArgs(x[i], y[i])).every(Boolean)
    }
    case 'date': return Object.is((a as Date).getTime(), (b as Date).getTime())
    case 'map': return sameMembers([...(a as Map<unknown, unknown>)], [...(b as Map<unknown, unknown>)],
      ([k1, v1], [k2, v2]) => equalArgs(k1, k2) && equalArgs(v1, v2))
    case 'set': return sameMembers([...(a as Set<unknown>)], [...(b as Set<unknown>)], equalArgs)
    case 'binary': {
      const [x, y] = [a as ArrayBufferView, b as ArrayBufferView]
      return x.constructor === y.constructor &&
        Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength))
    }
    default: {
      const [x, y] = [a as Record<string, unknown>, b as Record<string, unknown>]
      const [xKeys, yKeys] = [Object.keys(x).sort(), Object.keys(y).sort()]
      return xKeys.length === yKeys.length && xKeys.every((key, i) => key === yKeys[i] && equalArgs(x[key], y[key]))
    }
  }
}

/** Argument lists of at most `maxLength` values (and members per container) built from `leaf`. */
function argumentLists (leaf: fc.Arbitrary<unknown>, maxLength: number): fc.Arbitrary<unknown[]> {
  const { value } = fc.letrec<{ value: unknown }>((tie) => ({
    value: fc.oneof({ depthSize: 'small', withCrossShrink: true },
      leaf,
      fc.array(tie('value'), { maxLength }),
      fc.sparseArray(tie('value'), { maxLength }),
      fc.dictionary(fc.constantFrom('a', 'b', 'c d', ''), tie('value'), { maxKeys: maxLength }),
      fc.array(fc.tuple(tie('value'), tie('value')), { maxLength }).map((entries) => new Map(entries)),
      fc.array(tie('value'), { maxLength }).map((members) => new Set(members)))
  }))
  return fc.array(value, { maxLength })
}

/**
 * Groups of values that JSON or a careless encoder would confuse: `undefined` and `null`, `0` and `-0`, `1`, `1n` and
 * `'1'`, a Date and its time, a Buffer and a Uint8Array of the same bytes...
 */
const LOOK_ALIKES: unknown[][] = [
  [undefined, null, 'undefined', 'null', 'hole', ''],
  [0, -0, 0n, '0', false, new Date(0), Buffer.from([0]), new Float64Array([-0])],
  [1, 1n, '1', '1n', true, new Date(1), Buffer.from([1]), new Uint8Array([1]), new Int8Array([1])],
  [NaN, 'NaN', new Date(NaN), Infinity, -Infinity, new Float64Array([0])]
]

/** Look-alikes, in lists so small that independent draws are often equal or one leaf apart. */
const lookAlike = fc.constantFrom(...LOOK_ALIKES.flat())

/** Arbitrary numbers, strings (lone surrogates included) and binary views, for breadth. */
const anyLeaf = fc.oneof(
  lookAlike,
  fc.double(),
  fc.bigInt(),
  fc.string({ unit: 'binary', maxLength: 4 }),
  fc.uint8Array({ maxLength: 2 }).chain((bytes) => fc.constantFrom<unknown>(
    Buffer.from(bytes), new Uint8Array(bytes), new Int8Array(bytes), new Uint8ClampedArray(bytes))),
  fc.float64Array({ maxLength: 1 })
)

const lookAlikeLists = argumentLists(lookAlike, 2)
const argumentList = argumentLists(anyLeaf, 3)

/** An equal copy built afresh, with every order that does not count reversed. */
function reordered (value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value
  switch (kindOf(value)) {
    case 'array': {
      const source = value as unknown[]
      const copy = new Array<unknown>(source.length)
      for (let i = 0; i < source.length; i++) if (i in source) copy[i] = reordered(source[i])
      return copy
    }
    case 'date': return new Date((value as Date).getTime())
    case 'map': return new Map([...(value as Map<unknown, unknown>)].reverse().map(([k, v]) => [reordered(k), reordered(v)]))
    case 'set': return new Set([...(value as Set<unknown>)].reverse().map(reordered))
    case 'binary': return (value as Uint8Array).slice()
    default: {
      const copy: Record<string, unknown> = Object.getPrototypeOf(value) === null ? Object.create(null) : {}
      for (const key of Object.keys(value).reverse()) copy[key] = reordered((value as Record<string, unknown>)[key])
      return copy
    }
  }
}

/** Runs a property as one assertion; a failure reports fast-check's counterexample and seed. */
function holds<Ts> (t: Test, property: fc.IProperty<Ts>, numRuns: number): void {
  const details = fc.check(property, { numRuns })
  t.notOk(details.failed, fc.defaultReportMessage(details) ?? `holds over ${numRuns} runs`)
}

t.test('property: two argument lists have the same key exactly when they are equal', async (t) => {
  for (const [lists, name] of [[lookAlikeLists, 'look-alikes'], [argumentList, 'any values']] as const) {
    let equalPairs = 0
    holds(t, fc.property(lists, lists, (a, b) => {
      const equal = equalArgs(a, b)
      if (equal) equalPairs++
      return sameKey(a, b) === equal
    }), 5_000)
    t.ok(equalPairs > 50, `${name}: equal pairs are common enough to matter (${equalPairs} of 5000)`)
  }
})

/** Marks a leaf slot to become a hole (in an array) or `undefined` (elsewhere). */
const HOLE = Symbol('hole')

/** The `n`th look-alike of `leaf`, from its group (or any group, for a leaf in none). */
function lookAlikeOf (leaf: unknown, n: number): unknown {
  const group = LOOK_ALIKES.find((members) => members.some((member) => equalArgs(member, leaf))) ??
    LOOK_ALIKES[n % LOOK_ALIKES.length] as unknown[]
  return group[n % group.length]
}

/**
 * A copy of `value` with the same shape, whose leaves (and array holes) are changed by `choices` in turn: `null`
 * keeps the leaf, a number `n` puts its `n`th look-alike instead, HOLE a hole. Map keys and Set members are leaves too.
 */
function withLeaves (value: unknown, choices: Array<number | null | typeof HOLE>): unknown {
  const next = (current: unknown): unknown => {
    const choice = choices.length === 0 ? null : choices.shift()
    if (choice === null || choice === undefined) return current
    return choice === HOLE ? undefined : lookAlikeOf(current, choice)
  }
  if (typeof value !== 'object' || value === null || kindOf(value) === 'date' || kindOf(value) === 'binary') return next(value)
  switch (kindOf(value)) {
    case 'array': {
      const source = value as unknown[]
      const copy = new Array<unknown>(source.length)
      for (let i = 0; i < source.length; i++) {
        const choice = choices.length === 0 ? null : choices[0]
        if (choice === HOLE) choices.shift()
        else if (i in source) copy[i] = withLeaves(source[i], choices)
        else if (choice !== null) copy[i] = withLeaves(undefined, choices)
        else choices.shift()
      }
      return copy
    }
    case 'map': return new Map([...(value as Map<unknown, unknown>)].map(([k, v]) => [withLeaves(k, choices), withLeaves(v, choices)]))
    case 'set': return new Set([...(value as Set<unknown>)].map((member) => withLeaves(member, choices)))
    default: {
      const copy: Record<string, unknown> = {}
      for (const key of Object.keys(value)) copy[key] = withLeaves((value as Record<string, unknown>)[key], choices)
      return copy
    }
  }
}

t.test('property: a copy in another order has the same key', async (t) => {
  holds(t, fc.property(argumentList, (a) => equalArgs(a, reordered(a)) && sameKey(a, reordered(a) as unknown[])), 2_000)
})

t.test('property: lists of one shape whose leaves may differ have the same key exactly when they are equal', async (t) => {
  // Mostly kept, so that a pair often differs in a single leaf: the case where look-alikes would collide.
  const choice = fc.oneof({ arbitrary: fc.constant(null), weight: 4 }, fc.nat(), fc.constant<typeof HOLE>(HOLE))
  const choices = fc.array(choice, { minLength: 30, maxLength: 30 })
  for (const [lists, name] of [[lookAlikeLists, 'look-alikes'], [argumentList, 'any values']] as const) {
    let equalPairs = 0
    holds(t, fc.property(lists, choices, (a, leaves) => {
      const b = withLeaves(a, [...leaves]) as unknown[]
      const equal = equalArgs(a, b)
      if (equal) equalPairs++
      return sameKey(a, b) === equal
    }), 5_000)
    t.ok(equalPairs > 500 && equalPairs < 4_500, `${name}: both outcomes are common (${equalPairs} of 5000 equal)`)
  }
})
