// 6. Properties of the key function (see lib/key-oracle.ts), with many more runs than the npm test version.
import fc from 'fast-check'
import { parserProbe, parserProperty, urlProperty } from '../lib/key-oracle.js'
import { goal, type Scenario } from '../lib/scenario.js'

function counterexample (details: { failed: boolean, seed: number, counterexample: unknown, errorInstance: unknown }): string {
  if (!details.failed) return ''
  const example = JSON.stringify(details.counterexample)
  return ` (seed ${details.seed}, counterexample ${example.length > 300 ? example.slice(0, 300) + '…' : example}` +
    `${details.errorInstance instanceof Error ? `: ${details.errorInstance.message}` : ''})`
}

export const keyProperty: Scenario = async ({ quick, seed, log }) => {
  const urlRuns = quick ? 5_000 : 50_000
  const parserRuns = quick ? 1_000 : 5_000
  log(`${urlRuns} URL pairs, ${parserRuns} raw query pairs (seed ${seed})`)
  const url = fc.check(urlProperty, { numRuns: urlRuns, seed })
  const app = await parserProbe()
  const parser = await fc.check(parserProperty(app), { numRuns: parserRuns, seed })
  await app.close()
  return {
    id: '6',
    name: 'Key function properties (fast-check)',
    method: 'fake requests { url, headers } through requestKey on five route shapes (no query, queryString true, ' +
      "['page'], two vary headers, query and vary). (a) a logical URL written in random equivalent spellings: keys " +
      'equal exactly when the README normal forms are equal (and <= 250 bytes, bypass when an unkeyed query is sent). ' +
      '(b) raw queries through Fastify (inject): a different request.query as the handler sees it must mean a different key.',
    goals: [
      goal('(a) two different normalised URLs never share a key; equal ones always do', !url.failed,
        `${url.numRuns} runs${url.failed ? ', FAILED' + counterexample(url) : ', no counterexample'}`),
      goal('(b) a different query for the handler never shares a key', !parser.failed,
        `${parser.numRuns} runs${parser.failed ? ', FAILED' + counterexample(parser) : ', no counterexample'}`)
    ],
    figures: {
      url: { runs: url.numRuns, failed: url.failed, seed: url.seed, counterexample: url.counterexample, path: url.counterexamplePath },
      parser: { runs: parser.numRuns, failed: parser.failed, seed: parser.seed, counterexample: parser.counterexample, path: parser.counterexamplePath }
    }
  }
}
