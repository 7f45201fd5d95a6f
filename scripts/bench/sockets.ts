// Sockets benchmark (P2, P4, P10), each figure beside the bare ws + Redis
// baseline (fanout-baseline.ts) measured the same way in the same run.
//
// Tessera and the baseline each run in a process of their own (server-process.ts), one
// after the other; the load generator (sockets-load.ts) is another. For each of them:
//   P4  memory: the server process's RSS after a full GC, before and after 2 tabs per
//       session are opened and held, divided by the sockets;
//   P10 churn: new tabs on `--churn-concurrency` lanes for `--churn-seconds` (upgrade,
//       hello, welcome, close), with the held sockets still open;
//   P2  force terminate: DELETE /admin/sessions/:id at `--terminate-rate`/s, each timed
//       until both of the session's tabs have `session.terminated` and are closed.
//
//   npx tsx scripts/bench/sockets.ts [--sessions 5000] [--terminate-rate 50] [--churn-seconds 10]
import { fileURLToPath } from 'node:url'
import { benchRedisUrl, factsLine, loadAverage, machineFacts, openBenchEnv, onCleanup, parseFlags, runBenchmark } from './harness.js'
import { LoadProcess, progress } from './load-process.js'
import { printHotspots } from './profile.js'
import { startServerProcess } from './server-under-test.js'
import { writeSection } from './report.js'
import { seedSessions, signInAdmin } from './seed.js'
import type { SocketsSession } from './sockets-load.js'
import type { Dialect } from './tabs.js'
import { markdownTable, ms, num, ratio, type Summary, textTable } from './stats.js'

const NAME = 'sockets'

const defaults = {
  sessions: 5000,
  'connect-concurrency': 64,
  'churn-seconds': 10,
  'churn-concurrency': 32,
  'terminate-rate': 50,
  'terminate-seconds': 10,
  heap: false,
  profile: false,
  write: true,
}

const help: Record<keyof typeof defaults, string> = {
  sessions: 'sessions, each with 2 held tabs (P2 and P4 ask 5,000: 10,000 sockets)',
  'connect-concurrency': 'upgrades in flight at once while the held sockets are opened',
  'churn-seconds': 'how long new tabs are opened and closed (P10)',
  'churn-concurrency': 'lanes opening tabs one after another during the churn',
  'terminate-rate': 'force terminations per second (P2 asks 50)',
  'terminate-seconds': 'how long terminations are fired',
  heap: "print what Tessera's heap holds per held socket, by constructor (two heap snapshots; slow)",
  profile: "write CPU profiles of Tessera's process while the held sockets open and during the churn, and print their hot spots",
  write: 'refresh this section of docs/benchmarks.md (--write=false to skip)',
}

type Connect = { open: number; failures: Record<string, number>; seconds: number; connectsPerSecond: number; handshake: Summary }
type Churn = { connects: number; seconds: number; connectsPerSecond: number; handshake: Summary; failures: Record<string, number> }
type Writes = { postgres: number; redis: number }
/** What one connect of the churn cost the server process: CPU and round trips. */
type ChurnCost = { cpuUs: number; postgres: number; redis: number }
type Terminate = { sent: number; achievedRate: number; latency: Summary; errors: Record<string, number>; closeCodes: Record<string, number> }

interface Result {
  connect: Connect
  rssPerSocketKiB: number
  churn: Churn
  churnCost: ChurnCost
  terminate: Terminate
}

type HeapSummary = Record<string, { count: number; bytes: number }>

/** The heap's growth per socket by constructor, largest first. */
function printHeapGrowth(label: string, before: HeapSummary, after: HeapSummary, sockets: number) {
  const rows = Object.entries(after)
    .map(([name, a]) => ({ name, count: (a.count - (before[name]?.count ?? 0)) / sockets, bytes: (a.bytes - (before[name]?.bytes ?? 0)) / sockets }))
    .sort((x, y) => y.bytes - x.bytes)
    .slice(0, 25)
  const total = Object.entries(after).reduce((sum, [name, a]) => sum + a.bytes - (before[name]?.bytes ?? 0), 0) / sockets
  console.log(`\n${label}: heap growth per held socket, ${(total / 1024).toFixed(1)} KiB in all (self sizes)`)
  console.log(textTable(['constructor (type)', 'objects per socket', 'bytes per socket'], rows.map((r) => [r.name, r.count.toFixed(2), r.bytes.toFixed(0)])))
}

/** P4: opens two tabs per session and holds them; the server's RSS growth per socket. */
async function heldMemory(load: LoadProcess, server: LoadProcess, label: string, address: string, sessions: SocketsSession[], flags: typeof defaults, dialect: Dialect = 'socket.io') {
  const heapBefore = flags.heap ? await server.call<HeapSummary>('heapByConstructor') : null
  const before = await server.call<number>('rss')
  progress(NAME, `${label}: opening ${sessions.length * 2} held sockets`)
  const profiling = flags.profile && label === 'tessera'
  if (profiling) await server.call('profileStart')
  const connect = await load.call<Connect>('open', { label, address, sessions, concurrency: flags['connect-concurrency'], dialect })
  if (profiling) printHotspots(`${label}'s opening of the held sockets`, await server.call<Parameters<typeof printHotspots>[1]>('profileStop', { label: `${NAME}-open` }))
  if (connect.open < sessions.length * 2) throw new Error(`${label}: only ${connect.open} of ${sessions.length * 2} sockets opened: ${JSON.stringify(connect.failures)}`)
  // The hellos' side effects (presence, audit rows, subscriptions) settle before RSS is read.
  await new Promise((r) => setTimeout(r, 2000))
  const rssPerSocketKiB = ((await server.call<number>('rss')) - before) / 1024 / connect.open
  progress(NAME, `${label}: ${rssPerSocketKiB.toFixed(1)} KiB RSS per socket`)
  if (heapBefore) printHeapGrowth(label, heapBefore, await server.call<HeapSummary>('heapByConstructor'), connect.open)
  return { connect, rssPerSocketKiB }
}

async function measure(load: LoadProcess, server: LoadProcess, label: string, address: string, sessions: SocketsSession[], admin: { cookie: string; csrf: string }, flags: typeof defaults): Promise<Result> {
  const { connect, rssPerSocketKiB } = await heldMemory(load, server, label, address, sessions, flags, 'tessera')
  progress(NAME, `${label}: churn for ${flags['churn-seconds']} s`)
  const writesBefore = await server.call<Writes>('writes')
  const profiling = flags.profile && label === 'tessera'
  if (profiling) await server.call('profileStart')
  await server.call('meterStart')
  const churn = await load.call<Churn>('churn', { label, address, sessions, seconds: flags['churn-seconds'], concurrency: flags['churn-concurrency'] })
  const used = await server.call<{ cpuMs: number }>('meterStop')
  if (profiling) printHotspots(`${label}'s churn`, await server.call<Parameters<typeof printHotspots>[1]>('profileStop', { label: `${NAME}-churn` }))
  const writesAfter = await server.call<Writes>('writes')
  const perConnect = (n: number) => n / Math.max(1, churn.connects)
  const churnCost = {
    cpuUs: perConnect(1000 * used.cpuMs),
    postgres: perConnect(writesAfter.postgres - writesBefore.postgres),
    redis: perConnect(writesAfter.redis - writesBefore.redis),
  }
  progress(NAME, `${label}: ${num(churn.connectsPerSecond)} connects/s; terminating at ${flags['terminate-rate']}/s`)
  const terminate = await load.call<Terminate>('terminate', {
    label,
    address,
    admin,
    rate: flags['terminate-rate'],
    count: Math.round(flags['terminate-rate'] * flags['terminate-seconds']),
    timeoutMs: 10_000,
  })
  progress(NAME, `${label}: terminate p99 ${ms(terminate.latency.p99)} ms; closing sockets`)
  await load.call('closeAll')
  return { connect, rssPerSocketKiB, churn, churnCost, terminate }
}

async function main() {
  const flags = parseFlags(NAME, defaults, help)
  if (flags.sessions < 1) throw new Error('--sessions must be at least 1')
  const terminations = Math.round(flags['terminate-rate'] * flags['terminate-seconds'])
  if (terminations > flags.sessions) throw new Error(`--terminate-rate × --terminate-seconds (${terminations}) must not exceed --sessions`)
  const env = await openBenchEnv(NAME)
  const facts = await machineFacts(env.resources)
  progress(NAME, `${facts.nproc} cores, Node ${facts.node}, load average ${facts.loadAtStart}`)
  // Sessions are opened through Tessera's own code in this process; the servers measured run in processes of their own.
  const seeder = await env.node()
  const seeded = await seedSessions(NAME, seeder.tessera, flags.sessions, { platformsPerUser: 1, usernamePrefix: 'bench-sockets-' })
  await seeder.tessera.close()

  const load = new LoadProcess(fileURLToPath(new URL('./sockets-load.ts', import.meta.url)))
  onCleanup(() => load.close())

  const base = await startServerProcess({ kind: 'baseline', redisUrl: benchRedisUrl(), prefix: `${env.prefix}baseline:` })
  const baselineSessions = seeded.map((s) => ({ id: s.id, cookie: `sid=${s.id}` }))
  const baseline = await measure(load, base.server, 'baseline', base.address, baselineSessions, { cookie: '', csrf: '' }, flags)
  await base.server.call('stop')
  await base.server.close()

  // The peer, for memory only (P4): Socket.IO with its Redis adapter holding the same tabs.
  const peer = await startServerProcess({ kind: 'socket.io', redisUrl: benchRedisUrl(), prefix: `${env.prefix}peer:` })
  const peerRss = await heldMemory(load, peer.server, 'socket.io', peer.address, baselineSessions, flags)
  await load.call('closeAll')
  await peer.server.call('stop')
  await peer.server.close()

  const node = await startServerProcess({ kind: 'tessera', vars: env.vars })
  const admin = await signInAdmin(node.address, env.config.bootstrapAdmin.username, env.config.bootstrapAdmin.password!)
  const tessera = await measure(load, node.server, 'tessera', node.address, seeded.map((s) => ({ id: s.id, cookie: s.cookie })), admin, flags)
  await node.server.call('stop')
  await node.server.close()
  await load.close()
  return report(flags, facts, baseline, peerRss.rssPerSocketKiB, tessera)
}

function report(flags: typeof defaults, facts: Awaited<ReturnType<typeof machineFacts>>, b: Result, peerKiB: number, t: Result) {
  const sockets = flags.sessions * 2
  const failures = (r: Record<string, number>) => {
    const total = Object.values(r).reduce((a, c) => a + c, 0)
    return total === 0 ? '0' : `${total} (${Object.entries(r).map(([k, v]) => `${k}: ${v}`).join(', ')})`
  }
  const header = ['', 'baseline (bare ws + Redis)', 'Tessera', 'Tessera / baseline']
  const rows = [
    ['held sockets open', num(b.connect.open), num(t.connect.open), ''],
    ['P4 RSS per held socket KiB', b.rssPerSocketKiB.toFixed(1), t.rssPerSocketKiB.toFixed(1), ratio(t.rssPerSocketKiB, b.rssPerSocketKiB)],
    ['P4 the peer, Socket.IO + Redis adapter: KiB per socket', peerKiB.toFixed(1), '', `${ratio(t.rssPerSocketKiB, peerKiB)} of Socket.IO`],
    ['opening the held sockets: connects/s', num(b.connect.connectsPerSecond), num(t.connect.connectsPerSecond), ratio(t.connect.connectsPerSecond, b.connect.connectsPerSecond)],
    ['P10 churn: connects/s (upgrade, hello, welcome, close)', num(b.churn.connectsPerSecond), num(t.churn.connectsPerSecond), ratio(t.churn.connectsPerSecond, b.churn.connectsPerSecond)],
    ['P10 handshake p50 / p99 ms', `${ms(b.churn.handshake.p50)} / ${ms(b.churn.handshake.p99)}`, `${ms(t.churn.handshake.p50)} / ${ms(t.churn.handshake.p99)}`, ratio(t.churn.handshake.p99, b.churn.handshake.p99)],
    ['P10 failed connects', failures(b.churn.failures), failures(t.churn.failures), ''],
    ['P10 server CPU per connect µs', num(b.churnCost.cpuUs), num(t.churnCost.cpuUs), ratio(t.churnCost.cpuUs, b.churnCost.cpuUs)],
    ['P10 PostgreSQL / Redis writes per connect', `${b.churnCost.postgres.toFixed(2)} / ${b.churnCost.redis.toFixed(2)}`, `${t.churnCost.postgres.toFixed(2)} / ${t.churnCost.redis.toFixed(2)}`, ''],
    ['P2 terminations sent (achieved rate/s)', `${num(b.terminate.sent)} (${num(b.terminate.achievedRate)})`, `${num(t.terminate.sent)} (${num(t.terminate.achievedRate)})`, ''],
    ['P2 request → every tab closed p50 ms', ms(b.terminate.latency.p50), ms(t.terminate.latency.p50), ratio(t.terminate.latency.p50, b.terminate.latency.p50)],
    ['P2 p99 ms', ms(b.terminate.latency.p99), ms(t.terminate.latency.p99), ratio(t.terminate.latency.p99, b.terminate.latency.p99)],
    ['P2 max ms', ms(b.terminate.latency.max), ms(t.terminate.latency.max), ratio(t.terminate.latency.max, b.terminate.latency.max)],
    ['P2 errors', failures(b.terminate.errors), failures(t.terminate.errors), ''],
    ['P2 close codes', JSON.stringify(b.terminate.closeCodes), JSON.stringify(t.terminate.closeCodes), ''],
  ]
  const scale = sockets < 10_000 ? ` (at ${num(sockets)} sockets; the target asks 10,000)` : ''
  const yes = (ok: boolean) => (ok ? 'met' : '**not met**')
  const terminateClean = Object.keys(t.terminate.errors).length === 0 && Object.keys(t.terminate.closeCodes).every((c) => c === '4001')
  const targets = [
    ['P2 p99 ≤ 100 ms, every tab 4001', `${ms(t.terminate.latency.p99)} ms`, yes(t.terminate.latency.p99 <= 100 && terminateClean) + scale],
    ['P4 ≤ 10 KiB per socket', `${t.rssPerSocketKiB.toFixed(1)} KiB`, yes(t.rssPerSocketKiB <= 10) + scale],
    ["P4 below Socket.IO's per socket", `${t.rssPerSocketKiB.toFixed(1)} vs ${peerKiB.toFixed(1)} KiB`, yes(t.rssPerSocketKiB < peerKiB) + scale],
    ['P10 ≥ 1,000 connects/s, handshake p99 ≤ 200 ms', `${num(t.churn.connectsPerSecond)}/s, p99 ${ms(t.churn.handshake.p99)} ms`, yes(t.churn.connectsPerSecond >= 1000 && t.churn.handshake.p99 <= 200)],
  ]
  console.log(`\nSockets: ${flags.sessions} sessions × 2 held tabs, churn ${flags['churn-seconds']} s, ${flags['terminate-rate']} terminations/s`)
  console.log(textTable(header, rows))
  console.log(`\n${textTable(['target', 'Tessera', 'verdict'], targets)}`)
  if (flags.write) {
    const cmd = `npx tsx scripts/bench/sockets.ts ${process.argv.slice(2).join(' ')}`.trimEnd()
    writeSection(
      'sockets',
      `## Sockets: force terminate, memory per socket, connection churn (P2, P4, P10)

- **Run:** \`${cmd}\`
- **Machine:** ${factsLine(facts)}, at the end ${loadAverage()}. The load on the machine was not
  controlled: read the ratios more than the absolute figures.
- **Load:** ${flags.sessions} sessions × 2 held tabs = ${num(sockets)} sockets. P4: the server process's RSS after a
  full GC before and after the held sockets open, per socket (each server runs in a process
  of its own; the load generator in another). P10: for ${flags['churn-seconds']} s, ${flags['churn-concurrency']} lanes
  each open a new tab (upgrade with the session cookie, \`hello\`, \`welcome\`) and close it,
  one after another, with the held sockets still open. P2: \`DELETE /admin/sessions/:id\` with a
  reason at ${flags['terminate-rate']}/s (open loop) for ${flags['terminate-seconds']} s, each timed from just before the request leaves
  until both of the session's tabs have \`session.terminated\` and are closed.
- **Peer (P4 only):** Socket.IO 4 with \`@socket.io/redis-adapter\`, holding the same tabs (a room per session).
- **Baseline:** the bare \`ws\` + Redis relay of the fan-out benchmark; its terminate is one
  \`PUBLISH\` of a \`session.terminated\` frame, and the relay closes the sockets with 4001 after it.
  No authentication, no database, no audit.

${markdownTable(header, rows)}

${markdownTable(['target', 'Tessera', 'verdict'], targets)}
`,
    )
  }
  const verdict = (i: number) => targets[i]![2]!
  return {
    bench: `sockets (${num(sockets)} sockets)`,
    rows: [
      {
        figure: 'P2 force terminate → every tab closed p99 ms',
        target: '≤ 100',
        baseline: ms(b.terminate.latency.p99),
        peer: '—',
        tessera: ms(t.terminate.latency.p99),
        ratio: ratio(t.terminate.latency.p99, b.terminate.latency.p99),
        verdict: verdict(0),
      },
      {
        figure: 'P4 RSS per open socket KiB',
        target: '≤ 10, below the peer',
        baseline: b.rssPerSocketKiB.toFixed(1),
        peer: peerKiB.toFixed(1),
        tessera: t.rssPerSocketKiB.toFixed(1),
        ratio: `${ratio(t.rssPerSocketKiB, b.rssPerSocketKiB)}; ${ratio(t.rssPerSocketKiB, peerKiB)} of the peer`,
        verdict: `${verdict(1)}; below the peer: ${verdict(2)}`,
      },
      {
        figure: 'P10 churn: connects/s (handshake p99 ms)',
        target: '≥ 1,000 (≤ 200)',
        baseline: `${num(b.churn.connectsPerSecond)} (${ms(b.churn.handshake.p99)})`,
        peer: '—',
        tessera: `${num(t.churn.connectsPerSecond)} (${ms(t.churn.handshake.p99)})`,
        ratio: ratio(t.churn.connectsPerSecond, b.churn.connectsPerSecond),
        verdict: verdict(3),
      },
    ],
  }
}

void runBenchmark(NAME, main)
