import type { FastifyBaseLogger } from 'fastify'

/** Logs at most one line per kind of failure per interval, with the count of the lines it held back. */
export class RateLimitedLog {
  private readonly last = new Map<string, { at: number, suppressed: number }>()

  constructor (private readonly intervalMs: number) {}

  warn (log: FastifyBaseLogger, kind: string, err: unknown, message: string): void {
    const now = Date.now()
    const seen = this.last.get(kind)
    if (seen !== undefined && now - seen.at < this.intervalMs) {
      seen.suppressed++
      return
    }
    log.warn({ err, cacheFailure: kind, suppressed: seen?.suppressed ?? 0 }, message)
    this.last.set(kind, { at: now, suppressed: 0 })
  }
}
