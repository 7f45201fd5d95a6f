#!/usr/bin/env node
// S10: `npm audit --omit=dev` in CI. Where the registry's audit endpoint answers, a high or
// critical advisory fails the step (exit 1) and the advisories are listed. Where it does not
// (the registry this project's machines reach answers 405 Method Not Allowed), the step says
// so in one line and goes on: an unreachable endpoint is not a vulnerability.
// `node .ci/audit.mjs --stdin` judges `npm audit --json` output given on stdin (tests).
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

function audit() {
  if (process.argv.includes('--stdin')) return readFileSync(0, 'utf8')
  try {
    return execFileSync('npm', ['audit', '--omit=dev', '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
  } catch (err) {
    // npm audit exits non-zero both for advisories and for an endpoint error: the JSON says which.
    return err.stdout ?? ''
  }
}

const text = audit()
let report
try {
  report = JSON.parse(text)
} catch {
  console.log('ci: npm audit skipped: it gave no JSON report (the audit endpoint is unavailable); dependencies were not checked')
  process.exit(0)
}
const counts = report.metadata?.vulnerabilities
if (!counts) {
  const why = report.message ?? report.error?.summary ?? 'no report'
  console.log(`ci: npm audit skipped: the registry's audit endpoint is unavailable (${String(why).split(' - ')[0]}); dependencies were not checked`)
  process.exit(0)
}
const serious = (counts.high ?? 0) + (counts.critical ?? 0)
const summary = ['critical', 'high', 'moderate', 'low', 'info'].map((level) => `${counts[level] ?? 0} ${level}`).join(', ')
if (serious === 0) {
  console.log(`ci: npm audit --omit=dev: no high or critical advisory (${summary})`)
  process.exit(0)
}
console.error(`ci: npm audit --omit=dev: ${serious} high or critical advisor${serious === 1 ? 'y' : 'ies'} (${summary}):`)
for (const [name, v] of Object.entries(report.vulnerabilities ?? {})) {
  if (v.severity !== 'high' && v.severity !== 'critical') continue
  const titles = (v.via ?? []).filter((x) => typeof x === 'object').map((x) => `${x.title} (${x.url})`)
  console.error(`  ${name} ${v.range ?? ''}: ${v.severity}${titles.length ? ` — ${titles.join('; ')}` : ''}${v.fixAvailable ? ' (a fix is available: npm audit fix)' : ''}`)
}
process.exit(1)
