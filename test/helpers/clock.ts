import type { Test } from 'tap'

/** A promise the test releases when it chooses: the order of events is the test's, not the scheduler's. */
export interface Latch {
  promise: Promise<void>
  release: () => void
}

export function latch (): Latch {
  let release!: () => void
  const promise = new Promise<void>((resolve) => { release = resolve })
  return { promise, release }
}

/** A clock the test moves: Date.now for the duration of one test. */
export function fakeClock (t: Test): { advance: (ms: number) => void } {
  let now = 1_800_000_000_000
  t.capture(Date, 'now', () => now)
  return { advance: (ms) => { now += ms } }
}
