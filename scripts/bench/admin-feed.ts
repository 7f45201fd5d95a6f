// The admin live feed under load (P6): 10,000 sessions in presence, tabs of some
// of them changing view 500 times a second, one admin tab on the feed. Reported: feed
// messages per second on the admin socket and the time from a tab's view change to the
// delta that shows it. The baseline is what the feed would be without coalescing: one
// message per change.
//
//   npx tsx scripts/bench/admin-feed.ts [--sessions 10000] [--changers 250] [--rate 500] [--seconds 20]
import { fileURLToPath } from 'node:url'
import { factsLine, loadAverage, machineFacts, openBenchEnv, onCleanup, parseFlags, runBenchmark } from './harness.js'
import { LoadProcess, progress } from './load-process.js'
import { writeSection } from './report.js'
import { seedPresence, seedSessions, signInAdmin } from './seed.js'
import { markdownTable, ms, num, type Summary, textTable } from './stats.js'

const NAME = 'admin-feed'

const defaults = { sessions: 10_000, changers: 250, rate: 500, seconds: 20, write: true }
const help: Record<keyof typeof defaults, string> = {
  sessions: 'sessions in presence besides the changers (P6 asks 10,000 in all)',
  changers: 'sessions with tabs whose views change',
  rate: 'view changes per second, over the changers in turn (P6 asks 500)',
  seconds: 'how long views change',
  write: 'refresh this section of docs/benchmarks.md (--write=false to skip)',
}

async function main() {
  const flags = parseFlags(NAME, defaults, help)
  const env = await openBenchEnv(NAME)
  const facts = await machineFacts(env.resources)
  const node = await env.node()
  const now = Date.now()
  const quiet = Math.max(0, flags.sessions - flags.changers)
  await seedPresence(NAME, node.tessera, quiet, { usernamePrefix: 'bench-quiet-', times: (i) => ({ expiresAt: now + 3_600_000, lastActivity: now - i }) })
  const changers = await seedSessions(NAME, node.tessera, flags.changers, { platformsPerUser: 1, usernamePrefix: 'bench-changer-' })
  const admin = await signInAdmin(node.address, env.config.bootstrapAdmin.username, env.config.bootstrapAdmin.password!)
  const load = new LoadProcess(fileURLToPath(new URL('./sockets-load.ts', import.meta.url)))
  onCleanup(() => load.close())
  await load.call('watch', { address: node.address, admin, filter: {} })
  await load.call('open', { label: 'changers', address: node.address, sessions: changers.map((s) => ({ id: s.id, cookie: s.cookie })), concurrency: 32 })
  await load.call('feedShows', { ids: changers.map((s) => s.id), tabs: 2, timeoutMs: 30_000 })
  progress(NAME, `${num(quiet + changers.length + 1)} sessions in presence, ${changers.length * 2} tabs; ${flags.rate} view changes/s for ${flags.seconds} s`)
  const r = await load.call<{ sent: number; seconds: number; latency: Summary; unseen: number; feedMessagesPerSecond: number }>('viewChanges', { perSecond: flags.rate, seconds: flags.seconds, timeoutMs: 5000 })
  await load.call('closeAll')
  return report(flags, facts, quiet + changers.length + 1, r)
}

function report(flags: typeof defaults, facts: Awaited<ReturnType<typeof machineFacts>>, sessions: number, r: { sent: number; seconds: number; latency: Summary; unseen: number; feedMessagesPerSecond: number }) {
  const changesPerSecond = r.sent / r.seconds
  const header = ['', 'one message per change (no coalescing)', 'Tessera']
  const rows = [
    ['sessions in the feed', num(sessions), num(sessions)],
    ['view changes sent (per second)', `${num(r.sent)} (${num(changesPerSecond)})`, `${num(r.sent)} (${num(changesPerSecond)})`],
    ['feed messages per second on the admin socket', num(changesPerSecond), num(r.feedMessagesPerSecond, 1)],
    ['change → delta showing it: p50 ms', '—', ms(r.latency.p50)],
    ['p99 ms', '—', ms(r.latency.p99)],
    ['max ms', '—', ms(r.latency.max)],
    ['changes shown / replaced by the next view first', '—', `${num(r.latency.count)} / ${num(r.unseen)}`],
  ]
  const yes = (ok: boolean) => (ok ? 'met' : '**not met**')
  const scale = sessions < 10_000 ? ` (with ${num(sessions)} sessions; P6 asks 10,000)` : ''
  const targets = [
    ['P6 ≤ 4 messages/s per admin socket', num(r.feedMessagesPerSecond, 1), yes(r.feedMessagesPerSecond <= 4) + scale],
    ['P6 every change visible ≤ 1 s p99', `${ms(r.latency.p99)} ms`, yes(r.latency.p99 <= 1000 && r.latency.count > 0) + scale],
  ]
  console.log(`\nAdmin feed: ${num(sessions)} sessions, ${flags.rate} view changes/s for ${flags.seconds} s`)
  console.log(textTable(header, rows))
  console.log(`\n${textTable(['target', 'Tessera', 'verdict'], targets)}`)
  if (flags.write) {
    const cmd = `npx tsx scripts/bench/admin-feed.ts ${process.argv.slice(2).join(' ')}`.trimEnd()
    writeSection(
      'admin-feed',
      `## The admin live feed (P6)

- **Run:** \`${cmd}\`
- **Machine:** ${factsLine(facts)}, at the end ${loadAverage()}.
- **Load:** ${num(sessions)} sessions in presence (the admin's own among them); ${flags.changers} of them hold two tabs, and
  their first tabs, in turn, send a heartbeat with a view never used before, ${flags.rate} a second (open loop), for
  ${flags.seconds} s. One admin tab holds \`admin.subscribe\` with no filter. Each change is timed from the
  heartbeat leaving until an \`admin.delta\` shows that view for the session (same process, same clock).
  A view replaced by the session's next one before a delta went out is rightly never shown.
- **Baseline:** the feed without coalescing, one message per change.

${markdownTable(header, rows)}

${markdownTable(['target', 'Tessera', 'verdict'], targets)}
`,
    )
  }
  return {
    bench: `admin feed (${num(sessions)} sessions)`,
    rows: [
      {
        figure: 'P6 messages/s per admin socket',
        target: '≤ 4',
        baseline: `${num(changesPerSecond)} (one per change)`,
        peer: '—',
        tessera: num(r.feedMessagesPerSecond, 1),
        ratio: '',
        verdict: targets[0]![2]!,
      },
      { figure: 'P6 change → admin screen p99 ms', target: '≤ 1,000', baseline: '—', peer: '—', tessera: ms(r.latency.p99), ratio: '', verdict: targets[1]![2]! },
    ],
  }
}

void runBenchmark(NAME, main)
