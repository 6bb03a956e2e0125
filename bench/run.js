// `npm run bench`: the benchmark is TypeScript (bench/main.ts), loaded through tsx like the rest of the repo.
// Options: --quick (about a minute), --rounds N, --duration S, --warmup S, --only=<case,…>, --profile=<server,…>,
// --strict (exit 1 when a target is missed). See bench/README.md.
import { register } from 'tsx/esm/api'

register()
const { main } = await import('./main.ts')
process.exitCode = await main(process.argv.slice(2))
