// `npm run audit`: `npm audit` of what a user installs (the production dependencies), summarised in a few lines.
// Exit 0: no high or critical advisory. Exit 1: at least one. Exit 2: the audit could not run (for instance a
// registry whose audit endpoint refuses the request), so the counts are unknown, not zero.
// It is not part of `npm test`: its answer depends on the registry and on the day, not on this repository.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const SEVERITIES = ['info', 'low', 'moderate', 'high', 'critical']
const root = fileURLToPath(new URL('..', import.meta.url))

/** The summary names no registry host: the address is the machine's setting, not part of the result. */
function withoutHost (text) {
  return text.replace(/https?:\/\/[^/\s]+\/?/g, '<registry>/')
}

function parse (stdout) {
  try {
    return JSON.parse(stdout)
  } catch {
    return undefined
  }
}

const run = spawnSync('npm', ['audit', '--omit=dev', '--json'], { cwd: root, encoding: 'utf8' })
const report = parse(run.stdout)
const counts = report?.metadata?.vulnerabilities
console.log('npm audit --omit=dev (the dependencies a user of fastify-cache installs)')
if (counts === undefined) {
  const reason = report?.message ?? report?.error?.summary ?? (run.stderr.trim().split('\n').at(-1) || `exit code ${run.status}`)
  console.log(`the audit did not run: ${withoutHost(reason)}`)
  console.log('high and critical advisories: unknown (not zero)')
  process.exit(2)
}
console.log(SEVERITIES.map((severity) => `${severity}: ${counts[severity] ?? 0}`).join(', '))
for (const [name, vulnerability] of Object.entries(report.vulnerabilities ?? {})) {
  const via = vulnerability.via.map((item) => typeof item === 'string' ? item : `${item.title ?? ''} ${item.url ?? ''}`.trim())
  console.log(`  ${vulnerability.severity} ${name} ${vulnerability.range ?? ''}: ${via.join('; ')}`)
}
process.exit((counts.high ?? 0) + (counts.critical ?? 0) > 0 ? 1 : 0)
