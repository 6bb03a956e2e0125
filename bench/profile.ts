// Reads a V8 .cpuprofile (`node --cpu-prof`) and says where the time went: by area (the plugin, Fastify,
// ioredis, Node's own code, GC, idle) and by function, self and total (self plus what it called).
import { readFileSync } from 'node:fs'

interface ProfileNode {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number, columnNumber: number }
  children?: number[]
}

interface CpuProfile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
  startTime: number
  endTime: number
}

export interface ProfileLine {
  name: string
  /** Share of the busy (non-idle) time, in percent. */
  selfPct: number
  totalPct: number
}

export interface ProfileSummary {
  file: string
  busyMs: number
  idleMs: number
  areas: Array<{ area: string, pct: number }>
  top: ProfileLine[]
  /** Functions of plugin/, by total time. */
  plugin: ProfileLine[]
}

export function areaOf (url: string, functionName: string): string {
  if (functionName === '(idle)') return 'idle'
  if (functionName === '(garbage collector)') return 'GC'
  if (functionName === '(program)') return 'V8/native (program)'
  if (url.includes('/plugin/')) return 'fastify-cache plugin/'
  if (url.includes('/demo-blog/')) return 'demo-blog'
  if (url.includes('/bench/')) return 'bench route handlers'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg !== null) {
    const name = pkg[1] as string
    if (name === 'fastify' || name.startsWith('@fastify/') || ['light-my-request', 'find-my-way', 'avvio', 'fast-json-stringify'].includes(name)) {
      return 'fastify (+ @fastify/*)'
    }
    if (name === 'ioredis' || name.startsWith('@ioredis/') || name === 'redis-parser' || name === 'denque' || name === 'cluster-key-slot' || name === 'redis-errors') {
      return 'ioredis'
    }
    return name
  }
  if (url.startsWith('node:') || url === '') return 'node core / native'
  return 'other'
}

function shortUrl (url: string): string {
  const at = url.search(/\/(?:plugin|demo-blog|bench|node_modules)\//)
  if (at !== -1) return url.slice(at + 1)
  return url.replace(/^file:\/\//, '')
}

export function summarizeProfile (file: string, topN = 25): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const byId = new Map<number, ProfileNode>()
  const parent = new Map<number, number>()
  for (const node of profile.nodes) {
    byId.set(node.id, node)
    for (const child of node.children ?? []) parent.set(child, node.id)
  }
  const keyOf = (node: ProfileNode): string => {
    const { functionName, url, lineNumber } = node.callFrame
    if (url === '') return functionName === '' ? '(anonymous native)' : functionName
    // tsx compiles .ts files onto one line: their line numbers say nothing, the function name does.
    const line = /\.[cm]?ts$/.test(url) ? '' : `:${lineNumber + 1}`
    return `${functionName === '' ? '(anonymous)' : functionName} ${shortUrl(url)}${line}`
  }
  const self = new Map<string, number>()
  const total = new Map<string, number>()
  const areas = new Map<string, number>()
  let idle = 0
  let busy = 0
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i + 1] ?? 0 // a sample's time is the gap to the next one
    const node = byId.get(profile.samples[i] as number)
    if (node === undefined) continue
    const area = areaOf(node.callFrame.url, node.callFrame.functionName)
    if (area === 'idle') {
      idle += dt
      continue
    }
    busy += dt
    areas.set(area, (areas.get(area) ?? 0) + dt)
    const key = keyOf(node)
    self.set(key, (self.get(key) ?? 0) + dt)
    const seen = new Set<string>()
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const frame = byId.get(id)
      if (frame === undefined) break
      const frameKey = keyOf(frame)
      if (seen.has(frameKey)) continue
      seen.add(frameKey)
      total.set(frameKey, (total.get(frameKey) ?? 0) + dt)
    }
  }
  const pct = (us: number): number => busy === 0 ? 0 : (100 * us) / busy
  const line = (name: string): ProfileLine => ({ name, selfPct: pct(self.get(name) ?? 0), totalPct: pct(total.get(name) ?? 0) })
  return {
    file,
    busyMs: busy / 1000,
    idleMs: idle / 1000,
    areas: [...areas].sort((a, b) => b[1] - a[1]).map(([area, us]) => ({ area, pct: pct(us) })),
    top: [...self].sort((a, b) => b[1] - a[1]).slice(0, topN).map(([name]) => line(name)),
    plugin: [...total].filter(([name]) => name.includes('plugin/')).sort((a, b) => b[1] - a[1]).slice(0, topN)
      .map(([name]) => line(name))
  }
}

export function formatProfile (label: string, summary: ProfileSummary): string {
  const out = [`CPU profile of ${label}: ${summary.busyMs.toFixed(0)} ms busy, ${summary.idleMs.toFixed(0)} ms idle (${summary.file})`]
  out.push('  by area (self time, % of busy):')
  for (const { area, pct } of summary.areas.slice(0, 12)) out.push(`    ${pct.toFixed(1).padStart(5)}%  ${area}`)
  out.push('  hottest functions (self % / total %):')
  for (const l of summary.top) out.push(`    ${l.selfPct.toFixed(1).padStart(5)}% ${l.totalPct.toFixed(1).padStart(5)}%  ${l.name}`)
  if (summary.plugin.length > 0) {
    out.push('  plugin/ functions by total time (self % / total %):')
    for (const l of summary.plugin) out.push(`    ${l.selfPct.toFixed(1).padStart(5)}% ${l.totalPct.toFixed(1).padStart(5)}%  ${l.name}`)
  }
  return out.join('\n')
}

// `node --import tsx bench/profile.ts <file.cpuprofile>…`: the same summary for profiles taken by hand.
if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/'))) {
  for (const file of process.argv.slice(2)) console.log(formatProfile(file, summarizeProfile(file)) + '\n')
}
