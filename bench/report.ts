// The bench's output: the text table, and a small SVG of the same figures.

export interface CaseSummary {
  id: string
  label: string
  /** Medians over the rounds; undefined for a case that does not exist yet (N/A). */
  reqPerSec: number | undefined
  p50Ms: number | undefined
  p99Ms: number | undefined
  /** Server CPU (user + system) per response, in microseconds. */
  serverCpuUsPerReq: number | undefined
  /** req/s of the same rounds under wrk; undefined when wrk did not run. */
  wrkReqPerSec?: number
  /** Redis CPU per response, in microseconds, and Redis commands per response. */
  redisCpuUsPerReq: number | undefined
  redisCommandsPerReq: number | undefined
  note?: string
}

export type Verdict = 'PASS' | 'FAIL' | 'N/A' | 'INFO'

/** A ratio of two cases of one run: the median of the per-round ratios. */
export interface Comparison {
  caseId: string
  vsId: string
  vsLabel: string
  ratio: number | undefined
  /** The per-round ratios the median came from. */
  rounds: number[]
  /**
   * The same comparison in server CPU per response (theirs ÷ ours, median of the rounds): how much cheaper or dearer a
   * response is in the server process, whoever else had the CPU. For information; the verdict is on req/s.
   */
  cpuRatio?: number
  /** The same ratio under wrk (median of its per-round ratios); undefined when wrk did not run. */
  wrkRatio?: number
  wrkRounds?: number[]
  /** The target, as `ratio >= min`; undefined for a ratio shown for information (a ceiling). */
  min: number | undefined
  verdict: Verdict
  note?: string
}

export interface StampedeSummary {
  label: string
  concurrency: number
  handlerMs: number
  /** Handler runs in each round. */
  runs: number[]
  maxInFlight: number[]
  p50Ms: number
  p99Ms: number
  verdict: Verdict
}

const fmt = {
  int: (n: number | undefined): string => n === undefined ? 'N/A' : Math.round(n).toLocaleString('en-US'),
  ms: (n: number | undefined): string => n === undefined ? 'N/A' : Number.isInteger(n) ? String(n) : n < 10 ? n.toFixed(2) : n.toFixed(1),
  ratio: (n: number | undefined): string => n === undefined ? 'N/A' : n.toFixed(2),
  cmds: (n: number | undefined): string => n === undefined ? 'N/A' : n === 0 ? '0' : n.toFixed(2)
}

function pad (text: string, width: number, right = false): string {
  if (text.length >= width) return text
  return right ? text.padStart(width) : text.padEnd(width)
}

export function textTable (cases: CaseSummary[], comparisons: Comparison[], stampede: StampedeSummary | undefined): string {
  const header = ['case', 'req/s', 'wrk req/s', 'p50 ms', 'p99 ms', 'node µs', 'redis µs', 'cmd/req', 'ratio', 'wrk', 'compared with', 'target', 'result']
  const widths = [32, 7, 9, 6, 6, 7, 8, 7, 6, 5, 26, 6, 6]
  const right = [false, true, true, true, true, true, true, true, true, true, false, false, false]
  const rows: string[][] = []
  for (const c of cases) {
    const mine = comparisons.filter((comparison) => comparison.caseId === c.id)
    const first = mine[0]
    const cells = (comparison: Comparison | undefined): string[] => comparison === undefined
      ? ['—', '', '', '', '']
      : [
          fmt.ratio(comparison.ratio),
          comparison.wrkRatio === undefined ? '' : fmt.ratio(comparison.wrkRatio),
          '÷ ' + comparison.vsLabel,
          comparison.min === undefined ? '' : '≥ ' + comparison.min.toFixed(2),
          comparison.verdict === 'INFO' ? '' : comparison.verdict
        ]
    rows.push([c.label, fmt.int(c.reqPerSec), c.wrkReqPerSec === undefined ? '' : fmt.int(c.wrkReqPerSec), fmt.ms(c.p50Ms),
      fmt.ms(c.p99Ms), fmt.int(c.serverCpuUsPerReq), fmt.int(c.redisCpuUsPerReq), fmt.cmds(c.redisCommandsPerReq), ...cells(first)])
    for (const more of mine.slice(1)) rows.push(['', '', '', '', '', '', '', '', ...cells(more)])
  }
  if (stampede !== undefined) {
    rows.push([stampede.label, '', '', fmt.ms(stampede.p50Ms), fmt.ms(stampede.p99Ms), '', '', '',
      String(Math.max(...stampede.runs)), '', 'handler runs (max of rounds)', '= 1', stampede.verdict])
  }
  const line = (cells: string[]): string =>
    cells.map((cell, i) => pad(cell, widths[i] ?? 0, right[i] ?? false)).join('  ').trimEnd()
  const rule = widths.map((w) => '-'.repeat(w)).join('  ')
  return [line(header), rule, ...rows.map(line)].join('\n')
}

function escapeXml (text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

const COLORS: Record<Verdict, string> = { PASS: '#2e7d32', FAIL: '#c62828', 'N/A': '#9e9e9e', INFO: '#1565c0' }

/** Two panels: median req/s of every case, and each target's ratio against its threshold. */
export function svgChart (
  title: string, cases: CaseSummary[], comparisons: Comparison[], stampede: StampedeSummary | undefined
): string {
  const width = 820
  const labelWidth = 300
  const barWidth = width - labelWidth - 190
  const rowHeight = 22
  const targets = comparisons.filter((comparison) => comparison.min !== undefined)
  const measured = cases.map((c) => c.reqPerSec ?? 0)
  const maxRps = Math.max(1, ...measured)
  const parts: string[] = []
  let y = 30
  parts.push(`<text x="10" y="${y}" font-size="15" font-weight="bold">${escapeXml(title)}</text>`)
  y += 26
  parts.push(`<text x="10" y="${y}" font-size="13" font-weight="bold">Median requests per second (50 connections)</text>`)
  y += 10
  for (const c of cases) {
    const w = c.reqPerSec === undefined ? 0 : Math.max(1, (c.reqPerSec / maxRps) * barWidth)
    parts.push(`<text x="10" y="${y + 15}" font-size="12">${escapeXml(c.label)}</text>`)
    if (c.reqPerSec === undefined) {
      parts.push(`<text x="${labelWidth}" y="${y + 15}" font-size="12" fill="${COLORS['N/A']}">N/A${c.note === undefined ? '' : ' — ' + escapeXml(c.note)}</text>`)
    } else {
      parts.push(`<rect x="${labelWidth}" y="${y + 4}" width="${w.toFixed(1)}" height="14" fill="#1565c0"/>`)
      parts.push(`<text x="${(labelWidth + w + 6).toFixed(1)}" y="${y + 15}" font-size="12">${fmt.int(c.reqPerSec)}/s, p99 ${fmt.ms(c.p99Ms)} ms</text>`)
    }
    y += rowHeight
  }
  y += 24
  parts.push(`<text x="10" y="${y}" font-size="13" font-weight="bold">Targets: ratio of two cases in the same run (median of rounds); the line is the target</text>`)
  y += 10
  const scale = barWidth / 2 // the target sits in the middle; bars stop at twice the target
  const rows: Array<{ label: string, fraction: number | undefined, text: string, verdict: Verdict }> = targets.map((t) => ({
    label: `${cases.find((c) => c.id === t.caseId)?.label ?? t.caseId} ÷ ${t.vsLabel}`,
    fraction: t.ratio === undefined || t.min === undefined ? undefined : t.ratio / t.min,
    text: t.ratio === undefined
      ? `N/A (target ≥ ${t.min?.toFixed(2) ?? ''})`
      : `${fmt.ratio(t.ratio)}${t.wrkRatio === undefined ? '' : `, wrk ${fmt.ratio(t.wrkRatio)}`} (≥ ${t.min?.toFixed(2) ?? ''}) ${t.verdict}`,
    verdict: t.verdict
  }))
  if (stampede !== undefined) {
    const runs = Math.max(...stampede.runs)
    rows.push({ label: stampede.label, fraction: runs === 1 ? 1 : 1 / runs, text: `${runs} handler run(s) (= 1) ${stampede.verdict}`, verdict: stampede.verdict })
  }
  const top = y
  for (const row of rows) {
    parts.push(`<text x="10" y="${y + 15}" font-size="12">${escapeXml(row.label)}</text>`)
    if (row.fraction !== undefined) {
      const w = Math.max(1, Math.min(2, row.fraction) * scale)
      parts.push(`<rect x="${labelWidth}" y="${y + 4}" width="${w.toFixed(1)}" height="14" fill="${COLORS[row.verdict]}"/>`)
    }
    parts.push(`<text x="${labelWidth + barWidth + 8}" y="${y + 15}" font-size="12" fill="${COLORS[row.verdict]}">${escapeXml(row.text)}</text>`)
    y += rowHeight
  }
  parts.push(`<line x1="${labelWidth + scale}" y1="${top + 2}" x2="${labelWidth + scale}" y2="${y}" stroke="#000" stroke-dasharray="3,2"/>`)
  const height = y + 16
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
    'font-family="system-ui, sans-serif">\n<rect width="100%" height="100%" fill="#fff"/>\n' + parts.join('\n') + '\n</svg>\n'
}

/** A cached page in Redis: `HSTRLEN` of the field that holds it, and `MEMORY USAGE` of its key (bookkeeping included). */
export interface RedisBytes {
  field: number
  key: number
}

/** One page of the content-coding table: its bytes on the wire per HIT, by client, and in Redis, by storage choice. */
export interface CodingBytes {
  page: string
  /** The page as the handler makes it. */
  identityBytes: number
  /** content-length of one HIT for a client accepting br, one accepting gzip, and one accepting neither. */
  wire: { br: number, gzip: number, identity: number }
  /** As the plugin stores it now (br + gzip), and identity-only (the same page with `compressAbove: false`). */
  redis: { stored: RedisBytes, identityOnly: RedisBytes }
}

/** The goal of DESIGN.md "Encodings": an HTML page takes at most half its identity-only size in Redis. */
export function codingGoalHolds (row: CodingBytes): boolean {
  return row.redis.stored.field <= row.redis.identityOnly.field / 2 && row.redis.stored.key <= row.redis.identityOnly.key / 2
}

export function codingBytesTable (rows: CodingBytes[], unavailable: string[]): string {
  const header = ['page', 'identity', 'wire br', 'wire gzip', 'wire ident', 'Redis br+gzip', 'Redis identity-only', 'stored ÷ ident', 'goal ≤ 0.50']
  const widths = [10, 8, 7, 9, 10, 15, 19, 14, 11]
  const both = (bytes: RedisBytes): string => `${fmt.int(bytes.field)} / ${fmt.int(bytes.key)}`
  const lines = rows.map((row) => [
    row.page, fmt.int(row.identityBytes), fmt.int(row.wire.br), fmt.int(row.wire.gzip), fmt.int(row.wire.identity),
    both(row.redis.stored), both(row.redis.identityOnly),
    `${fmt.ratio(row.redis.stored.field / row.redis.identityOnly.field)} / ${fmt.ratio(row.redis.stored.key / row.redis.identityOnly.key)}`,
    codingGoalHolds(row) ? 'holds' : 'misses'
  ])
  const line = (cells: string[]): string => cells.map((cell, i) => pad(cell, widths[i] ?? 0, i > 0)).join('  ')
  const missed = rows.filter((row) => !codingGoalHolds(row)).map((row) => row.page)
  const verdict = rows.length === 0 ? 'not measured' : missed.length === 0 ? 'holds' : `missed for ${missed.join(', ')}`
  return [
    'Bytes per page by content coding. Wire: content-length of one HIT per client. Redis: HSTRLEN of the page\'s ' +
      'field / MEMORY USAGE of its key.',
    line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...lines.map(line),
    ...unavailable.map((reason) => `N/A ${reason}`),
    `Goal "HTML at most half its identity size in Redis" (br+gzip ÷ identity-only, field and key): ${verdict}.`
  ].join('\n')
}
