// What a scenario reports: its goals, each with the measured figure and PASS or FAIL, and the raw figures.
export interface Goal {
  goal: string
  measured: string
  pass: boolean
}

export interface ScenarioResult {
  id: string
  name: string
  /** How it was measured, in a sentence or two. */
  method: string
  goals: Goal[]
  figures: Record<string, unknown>
  /** Set when the scenario itself could not run to the end. */
  error?: string
  seconds: number
}

export interface RunContext {
  quick: boolean
  tmpDir: string
  seed: number
  log: (message: string) => void
}

export type Scenario = (ctx: RunContext) => Promise<Omit<ScenarioResult, 'seconds'>>

export function goal (goal: string, pass: boolean, measured: string): Goal {
  return { goal, measured, pass }
}

/** Runs `cleanups` in reverse, whatever happens, and never throws. */
export class Cleanup {
  private readonly steps: Array<() => unknown> = []
  add (step: () => unknown): void {
    this.steps.push(step)
  }

  async run (): Promise<void> {
    for (const step of this.steps.reverse()) {
      try {
        await step()
      } catch {
        // best effort: a cleanup failure must not hide the scenario's result
      }
    }
  }
}
