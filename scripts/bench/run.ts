// `npm run bench`: every benchmark with its default parameters, one after another, each in
// a process of its own (so one's heap and sockets do not weigh on the next), then a summary.
// `npm run bench -- --quick` uses small parameters instead, to check that all of it works.
import { type ChildProcess, execFileSync, fork } from 'node:child_process'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { BENCHMARKS_DOC, writeSection } from './report.js'
import { markdownTable, type SummaryRow, textTable } from './stats.js'

interface Summary {
  bench: string
  rows: SummaryRow[]
}

const quick = process.argv.includes('--quick')
const unknown = process.argv.slice(2).filter((a) => a !== '--quick')
if (unknown.length > 0) {
  console.error(`usage: npm run bench [-- --quick]; run one benchmark with its own flags: npx tsx scripts/bench/fanout.ts --help`)
  process.exit(2)
}

// The quick plan checks that every scenario runs, not how fast: small, short, and it leaves
// docs/benchmarks.md alone.
const quickPlan: [file: string, args: string[]][] = [
  ['fanout.ts', ['--sessions', '100', '--seconds', '2', '--warmup', '0', '--resume-rounds', '3', '--cluster']],
  ['fanout.ts', ['--sessions', '100', '--seconds', '2', '--warmup', '0', '--resume-rounds', '3', '--nodes', '2', '--cluster']],
  ['session-state.ts', ['--seconds', '2', '--rate-seconds', '2', '--hooks', '1']],
  ['sweep.ts', ['--sessions', '2000', '--ticks', '100', '--idle-seconds', '2', '--due', '100', '--spread', '3', '--burst', '100', '--lead', '2']],
  ['sockets.ts', ['--sessions', '100', '--churn-seconds', '2', '--terminate-seconds', '1']],
  ['vanish.ts', ['--sessions', '6', '--ping-seconds', '1']],
  ['heartbeats.ts', ['--sessions', '100', '--seconds', '2']],
  ['admin-feed.ts', ['--sessions', '500', '--changers', '20', '--seconds', '2']],
  ['lock-burst.ts', ['--sessions', '200']],
  ['commit-floor.ts', ['--seconds', '1', '--sessions', '100']],
]

const plan: [file: string, args: string[]][] = quick
  ? quickPlan.map(([file, args]) => [file, [...args, '--write=false']])
  : [
      // P1 and P8 at their 10,000 sockets, each also on a private Redis Cluster (3 primaries) beside one Redis.
      ['fanout.ts', ['--sessions', '5000', '--cluster']],
      ['fanout.ts', ['--sessions', '5000', '--nodes', '2', '--cluster']],
      ['session-state.ts', []],
      ['sweep.ts', []],
      ['sockets.ts', []],
      ['vanish.ts', []],
      ['heartbeats.ts', []],
      ['admin-feed.ts', []],
      ['lock-burst.ts', []],
      ['commit-floor.ts', []],
      // P9, the stretch: 50,000 sockets at the default heartbeat rate for 5 minutes, or as many as the
      // open-files limit lets one process hold (heartbeats.ts says so in its verdict).
      ['heartbeats.ts', ['--sessions', '25000', '--seconds', '300', '--per-tab', '0.0333', '--tessera-only', '--section', 'p9']],
    ]

let current: ChildProcess | null = null
let interrupted = false
// A terminal's Ctrl-C reaches the benchmark too; it cleans up, and this waits for it.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    interrupted = true
    current?.kill(signal)
  })
}

function runOne(file: string, args: string[]): Promise<Summary | null> {
  return new Promise((resolve) => {
    let summary: Summary | null = null
    const child = fork(fileURLToPath(new URL(`./${file}`, import.meta.url)), args, { stdio: 'inherit' })
    current = child
    child.on('message', (m: { summary?: Summary }) => {
      if (m.summary) summary = m.summary
    })
    child.on('exit', (code) => {
      current = null
      if (code !== 0) console.error(`${file} ${args.join(' ')} exited with ${code}`)
      resolve(summary)
    })
  })
}

const runStarted = new Date()
const summaries: Summary[] = []
let failed = 0
for (const [file, args] of plan) {
  if (interrupted) break
  console.log(`\n━━ ${file} ${args.join(' ')}`.trimEnd())
  const s = await runOne(file, args)
  if (s) summaries.push(s)
  else failed++
}

const SUMMARY_HEADER = ['benchmark', 'figure', 'target', 'baseline', 'peer (Socket.IO)', 'Tessera', 'Tessera / baseline', 'verdict']

function summaryTable(format: typeof textTable) {
  const rows = summaries.flatMap((s) => s.rows.map((r, i) => [i === 0 ? s.bench : '', r.figure, r.target, r.baseline, r.peer, r.tessera, r.ratio, r.verdict]))
  return format(SUMMARY_HEADER, rows)
}

/** The whole run's summary, at the top of docs/benchmarks.md: only after a full run of every benchmark. */
function writeSummary(started: Date) {
  const commit = (() => {
    try {
      return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim()
    } catch {
      return 'unknown'
    }
  })()
  const load = os.loadavg().map((l) => l.toFixed(2)).join(' / ')
  writeSection(
    'summary',
    `## Summary of the last full run

- **Run:** \`npm run bench\`, ${started.toISOString().replace(/\.\d+Z$/, 'Z')} to ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}; Tessera ${commit};
  \`nproc\` ${os.availableParallelism()}; load average at the end ${load} (1 / 5 / 15 min). Each benchmark's section below
  has its own machine line and the details.
- **Peer:** Socket.IO 4 with \`@socket.io/redis-adapter\` on the same Redis, where a target asks for it (P1, P4, P8).

${summaryTable(markdownTable)}
`,
  )
}

if (summaries.length > 0) {
  console.log('\nSummary (figures of this run; the machine load was not controlled)')
  console.log(summaryTable(textTable))
  if (!quick && failed === 0 && !interrupted) writeSummary(runStarted)
  console.log(`\nDetails: ${BENCHMARKS_DOC}`)
}
process.exit(interrupted ? 130 : failed > 0 ? 1 : 0)
