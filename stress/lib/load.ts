// Starts the loader (autocannon, own process) and hands back its start time and, later, its samples.
import { join } from 'node:path'
import type { LoadConfig, LoadSamples } from '../loader.js'
import { startChild } from './child.js'
import { readSamples } from './metrics.js'

export interface RunningLoad {
  /** Epoch ms at which autocannon started. */
  startedAt: number
  done: Promise<LoadSamples>
}

let loads = 0

export async function startLoad (config: Omit<LoadConfig, 'samplesFile'>, tmpDir: string): Promise<RunningLoad> {
  const samplesFile = join(tmpDir, `load-${++loads}.json`)
  const child = startChild('stress/loader.ts', { ...config, samplesFile }, 'loader')
  const started = await child.waitFor((line) => line.event === 'started', 60_000)
  const done = child.waitFor((line) => line.event === 'done', (config.durationSec + 60) * 1000)
    .then(async () => {
      await child.stop()
      return readSamples(samplesFile)
    }, async (err: unknown) => {
      await child.stop()
      throw err
    })
  return { startedAt: started.at as number, done }
}

export async function runLoad (config: Omit<LoadConfig, 'samplesFile'>, tmpDir: string): Promise<LoadSamples> {
  return await (await startLoad(config, tmpDir)).done
}

export async function sleepUntil (at: number): Promise<void> {
  const wait = at - Date.now()
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
}
