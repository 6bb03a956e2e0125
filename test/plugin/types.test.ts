import t from 'tap'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))

t.test('the whole project type-checks, and every @ts-expect-error in test/types is an error', async (t) => {
  const result = await promisify(execFile)(process.execPath, ['node_modules/typescript/bin/tsc', '--noEmit', '-p', 'tsconfig.json'], { cwd: root })
    .then(() => ({ code: 0, output: '' }), (err: { code: number, stdout: string }) => ({ code: err.code, output: err.stdout }))
  t.equal(result.output, '', 'no type errors (an unused @ts-expect-error is one)')
  t.equal(result.code, 0)
})
