// Heartbeats (P3): every held socket sends a heartbeat each second, 30 times the
// default rate, for a minute; the server's event-loop delay and CPU per 1,000 heartbeats/s,
// beside the bare ws + Redis baseline receiving the same frames. Each server runs in a
// process of its own (server-process.ts), so its CPU and event loop are its own.
//
//   npx tsx scripts/bench/heartbeats.ts [--sessions 5000] [--seconds 60]
import { fileURLToPath } from 'node:url'
import type { Meter } from './harness.js'
import { benchRedisUrl, factsLine, loadAverage, machineFacts, openBenchEnv, openFilesLimit, onCleanup, parseFlags, runBenchmark } from './harness.js'
import { LoadProcess, progress } from './load-process.js'
import { startServerProcess } from './server-under-test.js'
import { writeSection } from './report.js'
import { seedSessions } from './seed.js'
import type { SocketsSession } from './sockets-load.js'
import { markdownTable, ms, num, percent, ratio, textTable } from './stats.js'

const NAME = 'heartbeats'

const defaults = { sessions: 5000, seconds: 60, 'per-tab': 1, 'connect-concurrency': 64, 'tessera-only': false, section: 'heartbeats', write: true }
const help: Record<keyof typeof defaults, string> = {
  sessions: 'sessions, each with 2 held tabs (P3 asks 5,000: 10,000 sockets)',
  seconds: 'how long the heartbeats go on (P3 asks 60)',
  'per-tab': 'heartbeats per tab per second',
  'connect-concurrency': 'upgrades in flight at once while the held sockets are opened',
  'tessera-only': 'skip the baseline (the P9 stretch run: --sessions 25000 --seconds 300 --per-tab 0.0333)',
  section: 'the section of docs/benchmarks.md to refresh (heartbeats, or p9 for the stretch run)',
  write: 'refresh this section of docs/benchmarks.md (--write=false to skip)',
}

type Used = ReturnType<Meter['stop']>
interface Result {
  sockets: number
  sent: number
  perSecond: number
  socketsClosed: number
  rssPerSocketKiB: number
  server: Used
  /** Server CPU ms per second for each 1,000 heartbeats/s: % of one core per 1,000/s × 10. */
  cpuPerThousand: number
}

async function measure(load: LoadProcess, server: LoadProcess, label: string, address: string, sessions: SocketsSession[], flags: typeof defaults): Promise<Result> {
  progress(NAME, `${label}: opening ${sessions.length * 2} held sockets`)
  const before = await server.call<number>('rss')
  const connect = await load.call<{ open: number }>('open', { label, address, sessions, concurrency: flags['connect-concurrency'] })
  await new Promise((r) => setTimeout(r, 2000))
  const rssPerSocketKiB = ((await server.call<number>('rss')) - before) / 1024 / connect.open
  progress(NAME, `${label}: ${num(connect.open)} sockets; ${num(connect.open * flags['per-tab'])} heartbeats/s for ${flags.seconds} s`)
  await server.call('meterStart')
  const hb = await load.call<{ sent: number; perSecond: number; socketsClosed: number }>('heartbeats', { perTabPerSecond: flags['per-tab'], seconds: flags.seconds })
  const used = await server.call<Used>('meterStop')
  await load.call('closeAll')
  progress(NAME, `${label}: ${num(hb.perSecond)} heartbeats/s, server CPU ${percent(used.cpuPercent, 100)}, loop delay p99 ${ms(used.loopDelayP99Ms)} ms`)
  return { sockets: connect.open, ...hb, rssPerSocketKiB, server: used, cpuPerThousand: (used.cpuMs / (used.elapsedMs / 1000)) / (hb.perSecond / 1000) }
}

/** Files each process keeps besides the sockets: PostgreSQL and Redis connections, logs, the runtime's own. */
const FILES_BESIDES_SOCKETS = 500

/**
 * The sessions asked for, or as many as fit: the server and the load generator each hold one
 * file per socket, and neither may open more files than the limit they inherit.
 */
function sessionsThatFit(asked: number): number {
  const limit = openFilesLimit()
  if (limit === null || asked * 2 + FILES_BESIDES_SOCKETS <= limit) return asked
  const fit = Math.floor((limit - FILES_BESIDES_SOCKETS) / 2)
  progress(NAME, `${num(asked * 2)} sockets asked, but a process may open only ${num(limit)} files here (ulimit -n): holding ${num(fit * 2)}`)
  return fit
}

async function main() {
  const asked = parseFlags(NAME, defaults, help)
  const flags = { ...asked, sessions: sessionsThatFit(asked.sessions) }
  const env = await openBenchEnv(NAME)
  const facts = await machineFacts(env.resources)
  const seeder = await env.node()
  const seeded = await seedSessions(NAME, seeder.tessera, flags.sessions, { platformsPerUser: 1, usernamePrefix: 'bench-heartbeats-' })
  await seeder.tessera.close()
  const load = new LoadProcess(fileURLToPath(new URL('./sockets-load.ts', import.meta.url)))
  onCleanup(() => load.close())
  let baseline: Result | null = null
  if (!flags['tessera-only']) {
    const base = await startServerProcess({ kind: 'baseline', redisUrl: benchRedisUrl(), prefix: `${env.prefix}baseline:` })
    baseline = await measure(load, base.server, 'baseline', base.address, seeded.map((s) => ({ id: s.id, cookie: `sid=${s.id}` })), flags)
    await base.server.call('stop')
    await base.server.close()
  }
  const node = await startServerProcess({ kind: 'tessera', vars: env.vars })
  const tessera = await measure(load, node.server, 'tessera', node.address, seeded.map((s) => ({ id: s.id, cookie: s.cookie })), flags)
  await node.server.call('stop')
  await node.server.close()
  return report(flags, facts, baseline, tessera)
}

function report(flags: typeof defaults, facts: Awaited<ReturnType<typeof machineFacts>>, b: Result | null, t: Result) {
  const header = ['', 'baseline (bare ws + Redis)', 'Tessera', 'Tessera / baseline']
  const row = (label: string, f: (r: Result) => string, n?: (r: Result) => number) => [label, b ? f(b) : 'not run', f(t), b && n ? ratio(n(t), n(b)) : '']
  const rows = [
    row('sockets', (r) => num(r.sockets)),
    row('RSS per held socket KiB', (r) => r.rssPerSocketKiB.toFixed(1), (r) => r.rssPerSocketKiB),
    row('heartbeats sent (per second)', (r) => `${num(r.sent)} (${num(r.perSecond)})`),
    row('server CPU (% of one core)', (r) => percent(r.server.cpuPercent, 100), (r) => r.server.cpuPercent),
    row('server CPU ms/s per 1,000 heartbeats/s', (r) => num(r.cpuPerThousand, 1), (r) => r.cpuPerThousand),
    row('event-loop delay p99 ms', (r) => ms(r.server.loopDelayP99Ms), (r) => r.server.loopDelayP99Ms),
    row('event-loop delay max ms', (r) => ms(r.server.loopDelayMaxMs)),
    row('sockets closed during the run', (r) => num(r.socketsClosed)),
  ]
  const yes = (ok: boolean) => (ok ? 'met' : '**not met**')
  const scale = t.sockets < 10_000 ? ` (at ${num(t.sockets)} sockets; P3 asks 10,000)` : ''
  const p9 = flags.section === 'p9'
  const limit = openFilesLimit()
  const p9Scale = t.sockets < 50_000 ? ` (at ${num(t.sockets)} sockets; P9 asks 50,000${limit !== null && limit < 100_000 ? `, and a process may open only ${num(limit)} files here` : ''})` : ''
  const targets = p9
    ? [
        [`P9 ${num(t.sockets)} sockets held ${flags.seconds} s, none closed`, `${num(t.socketsClosed)} closed`, yes(t.sockets >= 50_000 && t.socketsClosed === 0 && flags.seconds >= 300) + p9Scale],
        ['P9: P4 holds (≤ 10 KiB per socket)', `${t.rssPerSocketKiB.toFixed(1)} KiB`, yes(t.rssPerSocketKiB <= 10) + p9Scale],
      ]
    : [
    [`P3 sustained ${flags.seconds} s, loop delay p99 ≤ 50 ms`, `${ms(t.server.loopDelayP99Ms)} ms, ${num(t.socketsClosed)} sockets closed`, yes(t.server.loopDelayP99Ms <= 50 && t.socketsClosed === 0) + scale],
    ['P3 CPU per 1,000 heartbeats/s (reported)', `${num(t.cpuPerThousand, 1)} ms/s (${percent(t.cpuPerThousand / 10, 100)} of a core)`, 'reported'],
      ]
  console.log(`\nHeartbeats: ${num(t.sockets)} sockets × ${flags['per-tab']}/s for ${flags.seconds} s`)
  console.log(textTable(header, rows))
  console.log(`\n${textTable(['target', 'Tessera', 'verdict'], targets)}`)
  if (flags.write) {
    const cmd = `npx tsx scripts/bench/heartbeats.ts ${process.argv.slice(2).join(' ')}`.trimEnd()
    writeSection(
      flags.section,
      `## ${p9 ? 'Stretch: 50,000 sockets on one node (P9)' : 'Heartbeats (P3)'}

- **Run:** \`${cmd}\`
- **Machine:** ${factsLine(facts)}, at the end ${loadAverage()}.
- **Load:** ${flags.sessions} sessions × 2 held tabs; every tab sends \`{"type":"heartbeat","view":"/feed"}\` ${flags['per-tab']} time(s) a second,
  spread evenly (open loop), for ${flags.seconds} s; sockets spread over loopback source addresses, 25,000 to each
  (127.0.0.1, 127.0.0.2, …), as one address runs out of ports near 28,000. Server CPU and event-loop delay (\`monitorEventLoopDelay\`) are
  the server process's own: each server runs in a process of its own.
- **Baseline:** the bare \`ws\` + Redis relay, which receives the same frames and does nothing with them:
  the transport's own cost.

${markdownTable(header, rows)}

${markdownTable(['target', 'Tessera', 'verdict'], targets)}
`,
    )
  }
  return {
    bench: `${p9 ? 'P9 stretch' : 'heartbeats'} (${num(t.sockets)} sockets)`,
    rows: p9
      ? [
          {
            figure: `P9 sockets held ${flags.seconds} s (closed meanwhile)`,
            target: '50,000 (0)',
            baseline: '—',
            peer: '—',
            tessera: `${num(t.sockets)} (${num(t.socketsClosed)})`,
            ratio: '',
            verdict: targets[0]![2]!,
          },
          { figure: 'P9 RSS per socket KiB', target: '≤ 10', baseline: '—', peer: '—', tessera: t.rssPerSocketKiB.toFixed(1), ratio: '', verdict: targets[1]![2]! },
        ]
      : [
          {
            figure: `P3 event-loop delay p99 ms, ${num(t.perSecond)} heartbeats/s`,
            target: '≤ 50',
            baseline: b ? ms(b.server.loopDelayP99Ms) : 'not run',
            peer: '—',
            tessera: ms(t.server.loopDelayP99Ms),
            ratio: b ? ratio(t.server.loopDelayP99Ms, b.server.loopDelayP99Ms) : '',
            verdict: targets[0]![2]!,
          },
          {
            figure: 'P3 CPU ms/s per 1,000 heartbeats/s',
            target: 'reported',
            baseline: b ? num(b.cpuPerThousand, 1) : 'not run',
            peer: '—',
            tessera: num(t.cpuPerThousand, 1),
            ratio: b ? ratio(t.cpuPerThousand, b.cpuPerThousand) : '',
            verdict: 'reported',
          },
        ],
  }
}

void runBenchmark(NAME, main)
