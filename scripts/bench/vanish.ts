// Vanishing tabs (P12): how long until a session's tab count in the admin feed
// shows that its tabs are gone, after a clean close and after a network cut.
//
// Three load generators (sockets-load.ts): one holds an admin tab on the live feed; one
// holds two tabs for half the sessions and closes them cleanly; one holds two tabs for
// the other half and is frozen with SIGSTOP, so its sockets fall silent without a close
// frame or a FIN, as when a laptop's network goes away. Each is timed from the close (or
// the freeze) until the feed shows 0 tabs for the session. The bound to compare with is
// Tessera's own: the feed shows a silent socket gone within two ping intervals
// (WS_PING_INTERVAL_SECONDS) of its last sign of life (realtime/pinger.ts, silenceLimit).
//
//   npx tsx scripts/bench/vanish.ts [--sessions 50] [--ping-seconds 10]
import { fileURLToPath } from 'node:url'
import { factsLine, loadAverage, machineFacts, openBenchEnv, onCleanup, parseFlags, runBenchmark } from './harness.js'
import { LoadProcess, progress } from './load-process.js'
import { writeSection } from './report.js'
import { seedSessions, signInAdmin } from './seed.js'
import { markdownTable, ms, num, summarize, textTable } from './stats.js'

const NAME = 'vanish'

const defaults = { sessions: 50, 'ping-seconds': 10, write: true }
const help: Record<keyof typeof defaults, string> = {
  sessions: 'sessions with two tabs each; half close cleanly, half are cut',
  'ping-seconds': "Tessera's WS_PING_INTERVAL_SECONDS (its default: 10)",
  write: 'refresh this section of docs/benchmarks.md (--write=false to skip)',
}

const epochNow = () => performance.timeOrigin + performance.now()

async function main() {
  const flags = parseFlags(NAME, defaults, help)
  if (flags.sessions < 2) throw new Error('--sessions must be at least 2')
  const env = await openBenchEnv(NAME, { WS_PING_INTERVAL_SECONDS: String(flags['ping-seconds']) })
  const facts = await machineFacts(env.resources)
  const node = await env.node()
  const seeded = await seedSessions(NAME, node.tessera, flags.sessions, { platformsPerUser: 1, usernamePrefix: 'bench-vanish-' })
  const admin = await signInAdmin(node.address, env.config.bootstrapAdmin.username, env.config.bootstrapAdmin.password!)
  const half = Math.floor(seeded.length / 2)
  const clean = seeded.slice(0, half).map((s) => ({ id: s.id, cookie: s.cookie }))
  const cut = seeded.slice(half).map((s) => ({ id: s.id, cookie: s.cookie }))
  const loadFile = fileURLToPath(new URL('./sockets-load.ts', import.meta.url))
  const [watcher, closer, frozen] = [new LoadProcess(loadFile), new LoadProcess(loadFile), new LoadProcess(loadFile)]
  for (const p of [watcher, closer, frozen]) onCleanup(() => p.close())

  await watcher.call('watch', { address: node.address, admin, filter: { q: 'bench-vanish-' } })
  await closer.call('open', { label: 'clean', address: node.address, sessions: clean, concurrency: 16 })
  await frozen.call('open', { label: 'cut', address: node.address, sessions: cut, concurrency: 16 })
  const all = seeded.map((s) => s.id)
  if ((await watcher.call<(number | null)[]>('feedShows', { ids: all, tabs: 2, timeoutMs: 30_000 })).includes(null)) throw new Error('the admin feed never showed two tabs for every session')
  progress(NAME, `${seeded.length} sessions with 2 tabs each in the admin feed`)

  const cleanAt = epochNow()
  await closer.call('closeAll')
  const cleanTimes = await watcher.call<(number | null)[]>('feedShows', { ids: clean.map((s) => s.id), tabs: 0, timeoutMs: 30_000 })
  progress(NAME, `clean close: the feed shows 0 tabs after ${ms(Math.max(...cleanTimes.map((t) => (t ?? Number.NaN) - cleanAt)))} ms at most; now cutting the other ${cut.length}`)

  const cutAt = epochNow()
  frozen.signal('SIGSTOP')
  const cutTimes = await watcher.call<(number | null)[]>('feedShows', { ids: cut.map((s) => s.id), tabs: 0, timeoutMs: flags['ping-seconds'] * 4000 + 10_000 })
  frozen.signal('SIGKILL')
  return report(flags, facts, summarizeSince(cleanAt, cleanTimes), summarizeSince(cutAt, cutTimes))
}

/** Latencies from `from` of those that got there, and how many did not. */
function summarizeSince(from: number, times: (number | null)[]) {
  const reached = times.filter((t): t is number => t !== null).map((t) => Math.max(0, t - from))
  return { ...summarize(reached), missed: times.length - reached.length }
}

function report(flags: typeof defaults, facts: Awaited<ReturnType<typeof machineFacts>>, clean: ReturnType<typeof summarizeSince>, cut: ReturnType<typeof summarizeSince>) {
  const bound = 2 * flags['ping-seconds'] * 1000
  const header = ['', 'clean close', 'network cut (SIGSTOP)']
  const rows = [
    ['sessions (2 tabs each)', num(clean.count + clean.missed), num(cut.count + cut.missed)],
    ['feed shows 0 tabs: p50 ms', ms(clean.p50), ms(cut.p50)],
    ['p99 ms', ms(clean.p99), ms(cut.p99)],
    ['max ms', ms(clean.max), ms(cut.max)],
    ['never shown', num(clean.missed), num(cut.missed)],
    ['bound by design', '—', `${ms(bound)} ms (two ping intervals, the feed's window included)`],
  ]
  const yes = (ok: boolean) => (ok ? 'met' : '**not met**')
  const targets = [
    ['P12 clean close in the feed ≤ 1 s', `max ${ms(clean.max)} ms`, yes(clean.missed === 0 && clean.max <= 1000)],
    ['P12 network cut in the feed ≤ 20 s', `max ${ms(cut.max)} ms`, yes(cut.missed === 0 && cut.max <= 20_000) + (flags['ping-seconds'] !== 10 ? ` (with pings every ${flags['ping-seconds']} s, not the default 10)` : '')],
  ]
  console.log(`\nVanishing tabs: ${flags.sessions} sessions, pings every ${flags['ping-seconds']} s`)
  console.log(textTable(header, rows))
  console.log(`\n${textTable(['target', 'Tessera', 'verdict'], targets)}`)
  if (flags.write) {
    const cmd = `npx tsx scripts/bench/vanish.ts ${process.argv.slice(2).join(' ')}`.trimEnd()
    writeSection(
      'vanish',
      `## Vanishing tabs (P12)

- **Run:** \`${cmd}\`
- **Machine:** ${factsLine(facts)}, at the end ${loadAverage()}.
- **Load:** an admin tab on the live feed (\`admin.subscribe\`); ${flags.sessions} sessions with two tabs each in two
  other load-generator processes. One closes its tabs with a close frame; the other is frozen
  with \`SIGSTOP\`, so its sockets fall silent with no close frame and no FIN (a network cut).
  Each session is timed from the close or the freeze until the feed shows 0 tabs for it.
- **Baseline:** the bound Tessera sets itself: a silent socket is closed early enough that the feed,
  which coalesces changes every \`ADMIN_FEED_INTERVAL_MS\`, shows it gone within two ping intervals
  (\`WS_PING_INTERVAL_SECONDS\` = ${flags['ping-seconds']}) of its last sign of life.

${markdownTable(header, rows)}

${markdownTable(['target', 'Tessera', 'verdict'], targets)}
`,
    )
  }
  return {
    bench: `vanishing tabs (${flags.sessions} sessions)`,
    rows: [
      { figure: 'P12 clean close → admin feed, max ms', target: '≤ 1,000', baseline: '—', peer: '—', tessera: ms(clean.max), ratio: '', verdict: targets[0]![2]! },
      {
        figure: 'P12 network cut → admin feed, max ms',
        target: '≤ 20,000',
        baseline: `${ms(bound)} (two intervals)`,
        peer: '—',
        tessera: ms(cut.max),
        ratio: '',
        verdict: targets[1]![2]!,
      },
    ],
  }
}

void runBenchmark(NAME, main)
