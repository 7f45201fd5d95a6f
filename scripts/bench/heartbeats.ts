// Heartbeats (quality.md P3): every held socket sends a heartbeat each second, 30 times the
// default rate, for a minute; the server's event-loop delay and CPU per 1,000 heartbeats/s,
// beside the bare ws + Redis baseline receiving the same frames. Each server runs in a
// process of its own (server-process.ts), so its CPU and event loop are its own.
//
//   npx tsx scripts/bench/heartbeats.ts [--sessions 5000] [--seconds 60]
import { fileURLToPath } from 'node:url'
import type { Meter } from './harness.js'
import { benchRedisUrl, factsLine, loadAverage, machineFacts, openBenchEnv, onCleanup, parseFlags, runBenchmark } from './harness.js'
import { LoadProcess, progress } from './load-process.js'
import { writeSection } from './report.js'
import { seedSessions } from './seed.js'
import type { SocketsSession } from './sockets-load.js'
import { markdownTable, ms, num, percent, ratio, textTable } from './stats.js'

const NAME = 'heartbeats'

const defaults = { sessions: 5000, seconds: 60, 'per-tab': 1, 'connect-concurrency': 64, write: true }
const help: Record<keyof typeof defaults, string> = {
  sessions: 'sessions, each with 2 held tabs (P3 asks 5,000: 10,000 sockets)',
  seconds: 'how long the heartbeats go on (P3 asks 60)',
  'per-tab': 'heartbeats per tab per second',
  'connect-concurrency': 'upgrades in flight at once while the held sockets are opened',
  write: 'refresh this section of docs/benchmarks.md (--write=false to skip)',
}

type Used = ReturnType<Meter['stop']>
interface Result {
  sockets: number
  sent: number
  perSecond: number
  socketsClosed: number
  server: Used
  /** Server CPU ms per second for each 1,000 heartbeats/s: % of one core per 1,000/s × 10. */
  cpuPerThousand: number
}

async function measure(load: LoadProcess, server: LoadProcess, label: string, address: string, sessions: SocketsSession[], flags: typeof defaults): Promise<Result> {
  progress(NAME, `${label}: opening ${sessions.length * 2} held sockets`)
  const connect = await load.call<{ open: number }>('open', { label, address, sessions, concurrency: flags['connect-concurrency'] })
  await new Promise((r) => setTimeout(r, 2000))
  progress(NAME, `${label}: ${num(connect.open)} sockets; ${num(connect.open * flags['per-tab'])} heartbeats/s for ${flags.seconds} s`)
  await server.call('meterStart')
  const hb = await load.call<{ sent: number; perSecond: number; socketsClosed: number }>('heartbeats', { perTabPerSecond: flags['per-tab'], seconds: flags.seconds })
  const used = await server.call<Used>('meterStop')
  await load.call('closeAll')
  progress(NAME, `${label}: ${num(hb.perSecond)} heartbeats/s, server CPU ${percent(used.cpuPercent, 100)}, loop delay p99 ${ms(used.loopDelayP99Ms)} ms`)
  return { sockets: connect.open, ...hb, server: used, cpuPerThousand: (used.cpuMs / (used.elapsedMs / 1000)) / (hb.perSecond / 1000) }
}

async function main() {
  const flags = parseFlags(NAME, defaults, help)
  const env = await openBenchEnv(NAME)
  const facts = await machineFacts(env.resources)
  const seeder = await env.node()
  const seeded = await seedSessions(NAME, seeder.tessera, flags.sessions, { platformsPerUser: 1, usernamePrefix: 'bench-heartbeats-' })
  await seeder.tessera.close()
  const load = new LoadProcess(fileURLToPath(new URL('./sockets-load.ts', import.meta.url)))
  onCleanup(() => load.close())
  const startServer = async (args: object) => {
    const server = new LoadProcess(fileURLToPath(new URL('./server-process.ts', import.meta.url)))
    onCleanup(() => server.close())
    const { address } = await server.call<{ address: string }>('start', args)
    return { server, address }
  }
  const base = await startServer({ kind: 'baseline', redisUrl: benchRedisUrl(), prefix: `${env.prefix}baseline:` })
  const baseline = await measure(load, base.server, 'baseline', base.address, seeded.map((s) => ({ id: s.id, cookie: `sid=${s.id}` })), flags)
  await base.server.call('stop')
  await base.server.close()
  const node = await startServer({ kind: 'tessera', vars: env.vars })
  const tessera = await measure(load, node.server, 'tessera', node.address, seeded.map((s) => ({ id: s.id, cookie: s.cookie })), flags)
  await node.server.call('stop')
  await node.server.close()
  return report(flags, facts, baseline, tessera)
}

function report(flags: typeof defaults, facts: Awaited<ReturnType<typeof machineFacts>>, b: Result, t: Result) {
  const header = ['', 'baseline (bare ws + Redis)', 'Tessera', 'Tessera / baseline']
  const rows = [
    ['sockets', num(b.sockets), num(t.sockets), ''],
    ['heartbeats sent (per second)', `${num(b.sent)} (${num(b.perSecond)})`, `${num(t.sent)} (${num(t.perSecond)})`, ''],
    ['server CPU (% of one core)', percent(b.server.cpuPercent, 100), percent(t.server.cpuPercent, 100), ratio(t.server.cpuPercent, b.server.cpuPercent)],
    ['server CPU ms/s per 1,000 heartbeats/s', num(b.cpuPerThousand, 1), num(t.cpuPerThousand, 1), ratio(t.cpuPerThousand, b.cpuPerThousand)],
    ['event-loop delay p99 ms', ms(b.server.loopDelayP99Ms), ms(t.server.loopDelayP99Ms), ratio(t.server.loopDelayP99Ms, b.server.loopDelayP99Ms)],
    ['event-loop delay max ms', ms(b.server.loopDelayMaxMs), ms(t.server.loopDelayMaxMs), ''],
    ['sockets closed during the run', num(b.socketsClosed), num(t.socketsClosed), ''],
  ]
  const yes = (ok: boolean) => (ok ? 'met' : '**not met**')
  const scale = t.sockets < 10_000 ? ` (at ${num(t.sockets)} sockets; P3 asks 10,000)` : ''
  const targets = [
    [`P3 sustained ${flags.seconds} s, loop delay p99 ≤ 50 ms`, `${ms(t.server.loopDelayP99Ms)} ms, ${num(t.socketsClosed)} sockets closed`, yes(t.server.loopDelayP99Ms <= 50 && t.socketsClosed === 0) + scale],
    ['P3 CPU per 1,000 heartbeats/s (reported)', `${num(t.cpuPerThousand, 1)} ms/s (${percent(t.cpuPerThousand / 10, 100)} of a core)`, 'reported'],
  ]
  console.log(`\nHeartbeats: ${num(t.sockets)} sockets × ${flags['per-tab']}/s for ${flags.seconds} s`)
  console.log(textTable(header, rows))
  console.log(`\n${textTable(['target', 'Tessera', 'verdict'], targets)}`)
  if (flags.write) {
    const cmd = `npx tsx scripts/bench/heartbeats.ts ${process.argv.slice(2).join(' ')}`.trimEnd()
    writeSection(
      'heartbeats',
      `## Heartbeats (P3)

- **Run:** \`${cmd}\`
- **Machine:** ${factsLine(facts)}, at the end ${loadAverage()}.
- **Load:** ${flags.sessions} sessions × 2 held tabs; every tab sends \`{"type":"heartbeat","view":"/feed"}\` ${flags['per-tab']} time(s) a second,
  spread evenly (open loop), for ${flags.seconds} s. Server CPU and event-loop delay (\`monitorEventLoopDelay\`) are
  the server process's own: each server runs in a process of its own.
- **Baseline:** the bare \`ws\` + Redis relay, which receives the same frames and does nothing with them:
  the transport's own cost.

${markdownTable(header, rows)}

${markdownTable(['target (quality.md)', 'Tessera', 'verdict'], targets)}
`,
    )
  }
  return {
    bench: `heartbeats (${num(t.sockets)} sockets)`,
    rows: [
      ['P3 loop delay p99 ms', ms(b.server.loopDelayP99Ms), ms(t.server.loopDelayP99Ms), ratio(t.server.loopDelayP99Ms, b.server.loopDelayP99Ms), targets[0]![2]!],
      ['P3 CPU ms/s per 1,000 heartbeats/s', num(b.cpuPerThousand, 1), num(t.cpuPerThousand, 1), ratio(t.cpuPerThousand, b.cpuPerThousand), 'reported'],
    ],
  }
}

void runBenchmark(NAME, main)
