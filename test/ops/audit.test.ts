// S10, the CI audit step (.ci/audit.mjs): a high or critical advisory fails it where the
// audit endpoint answers; an unavailable endpoint (this registry answers 405) is one line
// and no failure; moderate and low advisories are reported, not failed.
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const root = fileURLToPath(new URL('../..', import.meta.url))
const judge = (report: unknown) => spawnSync(process.execPath, ['.ci/audit.mjs', '--stdin'], { cwd: root, input: typeof report === 'string' ? report : JSON.stringify(report), encoding: 'utf8' })
const counts = (c: Record<string, number>) => ({ info: 0, low: 0, moderate: 0, high: 0, critical: 0, total: 0, ...c })

t.test('an unavailable audit endpoint is said in one line and does not fail CI', async (t) => {
  const r = judge({ message: '405 Method Not Allowed - POST https://registry.npmjs.org/-/npm/v1/security/advisories/bulk', statusCode: 405 })
  t.equal(r.status, 0)
  t.equal(r.stdout, "ci: npm audit skipped: the registry's audit endpoint is unavailable (405 Method Not Allowed); dependencies were not checked\n")
  t.equal(judge('').status, 0, 'no report at all: the same')
})

t.test('a high or critical advisory fails CI and is named; lesser ones are reported only', async (t) => {
  const high = judge({
    vulnerabilities: { fastify: { severity: 'high', range: '<5.0.1', via: [{ title: 'Something bad', url: 'https://github.com/advisories/GHSA-x' }], fixAvailable: true } },
    metadata: { vulnerabilities: counts({ high: 1, total: 1 }) },
  })
  t.equal(high.status, 1)
  t.match(high.stderr, /1 high or critical advisory/)
  t.match(high.stderr, /fastify <5\.0\.1: high — Something bad \(https:\/\/github\.com\/advisories\/GHSA-x\)/)
  const critical = judge({ vulnerabilities: {}, metadata: { vulnerabilities: counts({ critical: 2, total: 2 }) } })
  t.equal(critical.status, 1)
  const moderate = judge({ vulnerabilities: {}, metadata: { vulnerabilities: counts({ moderate: 3, low: 1, total: 4 }) } })
  t.equal(moderate.status, 0)
  t.match(moderate.stdout, /no high or critical advisory \(0 critical, 0 high, 3 moderate, 1 low, 0 info\)/)
})

t.test('CI runs the audit step before the tests', async (t) => {
  const run = readFileSync(`${root}/.ci/run`, 'utf8')
  t.ok(run.indexOf('node .ci/audit.mjs') >= 0 && run.indexOf('node .ci/audit.mjs') < run.indexOf('npm test'))
})
