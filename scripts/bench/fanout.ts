// Fan-out benchmark (P1, P8, P11; P10-style handshake figures on the side).
//
// Tessera runs in this process (openResources + buildApp, listening on 127.0.0.1:0; a
// second buildApp on the same resources with --nodes 2); the load generator is a child
// process (fanout-load.ts). S sessions with two tabs each; platform switches go through
// HTTP from tab A at a fixed rate to random sessions, and each is timed from just before
// its request leaves to the `platform.switched` frame reaching tab B (on the second node
// with --nodes 2). Then a tab reconnects after missing N events and is timed from `hello`
// to the N-th replayed frame. The baseline (fanout-baseline.ts) runs first, in this same
// process, with the same sockets, rate and measurements. With --cluster, Tessera runs a
// second time on a private Redis Cluster (3 primaries, 3 replicas, on this machine:
// test/helpers/private-cluster.ts), reported beside its run on one Redis.
//
//   npx tsx scripts/bench/fanout.ts [--sessions 500] [--rate 200] [--seconds 10] [--nodes 1|2] [--cluster]
import { fileURLToPath } from 'node:url'
import type { Redis } from 'ioredis'
import type { Tessera } from '../../src/app.js'
import { startBaselineNode, publishBaselineEvents } from './fanout-baseline.js'
import { startSocketIoNode } from './fanout-socketio.js'
import type { LoadSession } from './fanout-load.js'
import { privateCluster } from '../../test/helpers/private-cluster.js'
import { benchRedisUrl, countWrites, experimentOf, factsLine, loadAverage, machineFacts, type Meter, openBenchEnv, onCleanup, parseFlags, runBenchmark, startMeter } from './harness.js'
import { LoadProcess, progress } from './load-process.js'
import { type Hotspot, printHotspots, Profiler } from './profile.js'
import { writeSection } from './report.js'
import { seedSessions } from './seed.js'
import { markdownTable, ms, num, percent, ratio, type Summary, summarize, textTable } from './stats.js'
import type { Dialect } from './tabs.js'

const NAME = 'fanout'

const defaults = {
  sessions: 500,
  rate: 200,
  seconds: 10,
  warmup: 2,
  nodes: 1,
  'resume-rounds': 20,
  'resume-events': 500,
  'connect-concurrency': 64,
  'db-pool': 0,
  'redis-autopipelining': false,
  profile: false,
  cluster: false,
  write: true,
}

const help: Record<keyof typeof defaults, string> = {
  sessions: 'sessions, each with 2 tabs (P1 asks 5,000)',
  rate: 'platform switches per second',
  seconds: 'how long switches are fired',
  warmup: 'seconds of switches fired first and not counted (JIT, connection pools)',
  nodes: '1, or 2 for the cross-node variant (P8): tab B on the second node',
  'resume-rounds': 'how many times a tab reconnects and resumes',
  'resume-events': 'events the tab missed before each resume',
  'connect-concurrency': 'upgrades in flight at once while the sockets are opened',
  'db-pool': "Tessera's DATABASE_POOL_MAX (0: its default)",
  'redis-autopipelining': "experiment: turn on ioredis's enableAutoPipelining on Tessera's Redis connection (not what Tessera ships)",
  profile: "write a CPU profile of Tessera's switch phase and print its hot spots",
  cluster: 'also run Tessera on a private 3-primary Redis Cluster on this machine, reported beside one Redis',
  write: 'refresh this section of docs/benchmarks.md (--write=false to skip)',
}

type ConnectResult = { open: number; failures: Record<string, number>; seconds: number; connectsPerSecond: number; handshake: Summary }
type SwitchResult = {
  sent: number
  seconds: number
  achievedRate: number
  latency: Summary
  /** From when the schedule wanted each switch sent: corrected for coordinated omission. */
  latencyFromSchedule: Summary
  answer: Summary
  errors: Record<string, number>
  errorCount: number
  skipped: number
  socketsClosed: number
  scheduleLag: Summary
}
type ServerUse = ReturnType<Meter['stop']>

interface TargetResult {
  connect: ConnectResult
  switches: SwitchResult
  server: ServerUse
  resume: Summary & { inOrder: boolean; allReplayed: boolean }
  /** Socket writes of the server process to PostgreSQL and Redis, per switch and per resume. */
  writesPerSwitch: { postgres: number; redis: number }
  writesPerResume: { postgres: number; redis: number }
  hotspots?: { file: string; hotspots: Hotspot[]; tessera: Hotspot[] }
}

interface Target {
  label: string
  addresses: string[]
  /** The session the resume tab belongs to and how its missed events are published; null: no resume (the Socket.IO peer has no event log). */
  resume: { cookie: string; publish(count: number): Promise<void> } | null
  dialect: Dialect
  profile: boolean
  writes: () => { postgres: number; redis: number }
}

const per = (a: { postgres: number; redis: number }, b: { postgres: number; redis: number }, n: number) => ({
  postgres: (b.postgres - a.postgres) / Math.max(1, n),
  redis: (b.redis - a.redis) / Math.max(1, n),
})

async function measure(load: LoadProcess, t: Target, sessions: LoadSession[], flags: typeof defaults): Promise<TargetResult> {
  progress(NAME, `${t.label}: opening ${sessions.length * 2} sockets on ${t.addresses.length} node(s)`)
  const connect = await load.call<ConnectResult>('connect', { label: t.label, addresses: t.addresses, sessions, concurrency: flags['connect-concurrency'], dialect: t.dialect })
  if (connect.open < sessions.length * 2) throw new Error(`${t.label}: only ${connect.open} of ${sessions.length * 2} sockets opened: ${JSON.stringify(connect.failures)}`)
  // Let the last hellos' side effects (presence, audit rows) settle before the clock starts.
  await new Promise((r) => setTimeout(r, 1000))

  if (flags.warmup > 0) {
    progress(NAME, `${t.label}: ${flags.warmup} s of warm-up switches (not counted)`)
    await load.call<SwitchResult>('switches', { label: `${t.label} warm-up`, address: t.addresses[0], rate: flags.rate, seconds: flags.warmup, timeoutMs: 5000 })
  }
  const profiler = t.profile ? new Profiler() : null
  await profiler?.start()
  const meter = startMeter()
  const writesBefore = t.writes()
  const switches = await load.call<SwitchResult>('switches', { label: t.label, address: t.addresses[0], rate: flags.rate, seconds: flags.seconds, timeoutMs: 5000 })
  const server = meter.stop()
  const writesPerSwitch = per(writesBefore, t.writes(), switches.sent)
  const hotspots = profiler ? await profiler.stop(`fanout-${t.label}`) : undefined
  if (!t.resume) {
    await load.call('closeAll')
    const none = { ...summarize([]), inOrder: false, allReplayed: false }
    return { connect, switches, server, resume: none, writesPerSwitch, writesPerResume: { postgres: Number.NaN, redis: Number.NaN }, hotspots }
  }

  progress(NAME, `${t.label}: resume, ${flags['resume-rounds']} rounds of ${flags['resume-events']} missed events`)
  await load.call('resumeOpen', { address: t.addresses[0], cookie: t.resume.cookie, tabId: 'bench-resume' })
  const times: number[] = []
  let inOrder = true
  let allReplayed = true
  const resumeWrites = { postgres: 0, redis: 0 }
  for (let round = 0; round < flags['resume-rounds']; round++) {
    const { lastSeq } = await load.call<{ lastSeq: number }>('resumeClose')
    await t.resume.publish(flags['resume-events'])
    const before = t.writes()
    const r = await load.call<{ ms: number; replayed: number; inOrder: boolean }>('resumeReconnect', { lastSeq, expect: flags['resume-events'], timeoutMs: 10_000 })
    const w = per(before, t.writes(), 1)
    resumeWrites.postgres += w.postgres
    resumeWrites.redis += w.redis
    if (Number.isNaN(r.ms)) allReplayed = false
    else times.push(r.ms)
    inOrder &&= r.inOrder
  }
  const resume = { ...summarize(times), inOrder, allReplayed }
  progress(NAME, `${t.label}: resume p50 ${ms(resume.p50)} ms, p99 ${ms(resume.p99)} ms; closing sockets`)
  await load.call('closeAll')
  const writesPerResume = per({ postgres: 0, redis: 0 }, resumeWrites, flags['resume-rounds'])
  return { connect, switches, server, resume, writesPerSwitch, writesPerResume, hotspots }
}

async function main() {
  const flags = parseFlags(NAME, defaults, help)
  if (flags.nodes !== 1 && flags.nodes !== 2) throw new Error('--nodes is 1 or 2')
  if (flags.sessions < 1) throw new Error('--sessions must be at least 1')
  const env = await openBenchEnv(NAME, flags['db-pool'] > 0 ? { DATABASE_POOL_MAX: String(flags['db-pool']) } : {})
  const facts = await machineFacts(env.resources)
  // An experiment, reported with the figures: commands issued in one tick leave in one write.
  if (flags['redis-autopipelining']) env.resources.redis.options.enableAutoPipelining = true
  progress(NAME, `${facts.nproc} cores, Node ${facts.node}, load average ${facts.loadAtStart}`)

  const nodes: { tessera: Tessera; address: string }[] = []
  for (let i = 0; i < flags.nodes; i++) nodes.push(await env.node())
  const [first] = nodes
  const seeded = await seedSessions(NAME, first!.tessera, flags.sessions + 1, { platformsPerUser: 2, usernamePrefix: 'bench-user-' })
  const resumeSession = seeded.pop()!
  const sessions: LoadSession[] = seeded.map(({ id, cookie, csrf, platforms }) => ({ id, cookie, csrf, platforms }))

  const load = new LoadProcess(fileURLToPath(new URL('./fanout-load.ts', import.meta.url)))
  onCleanup(() => load.close())

  // The baseline first, on its own key prefix (under the benchmark's, so cleanup removes it).
  const baselinePrefix = `${env.prefix}baseline:`
  const baselineNodes = []
  for (let i = 0; i < flags.nodes; i++) {
    const node = await startBaselineNode(benchRedisUrl(), baselinePrefix)
    onCleanup(() => node.close())
    baselineNodes.push(node)
  }
  // The baseline's "cookie" names the session directly: it has no authentication.
  const baselineSessions = sessions.map((s) => ({ ...s, cookie: `sid=${s.id}` }))
  const redis: Redis = env.resources.redis
  const writes = countWrites(env.config.databaseUrl, env.config.redisUrl)
  const baseline = await measure(
    load,
    {
      label: 'baseline',
      addresses: baselineNodes.map((n) => n.address),
      resume: { cookie: `sid=${resumeSession.id}`, publish: (n) => publishBaselineEvents(redis, baselinePrefix, resumeSession.id, n) },
      dialect: 'tessera',
      profile: false,
      writes,
    },
    baselineSessions,
    flags,
  )
  for (const node of baselineNodes) await node.close()

  // The peer: Socket.IO with its Redis adapter, the same sockets and switches.
  const peerNodes = []
  for (let i = 0; i < flags.nodes; i++) {
    const node = await startSocketIoNode(benchRedisUrl(), `${env.prefix}peer:`)
    onCleanup(() => node.close())
    peerNodes.push(node)
  }
  const peer = await measure(load, { label: 'socket.io', addresses: peerNodes.map((n) => n.address), resume: null, dialect: 'socket.io', profile: false, writes }, baselineSessions, flags)
  for (const node of peerNodes) await node.close()

  const tessera = await measure(
    load,
    {
      label: 'tessera',
      addresses: nodes.map((n) => n.address),
      resume: resumeOf(first!.tessera, resumeSession),
      dialect: 'tessera',
      profile: flags.profile,
      writes,
    },
    sessions,
    flags,
  )
  const onCluster = flags.cluster ? await measureOnCluster(load, flags) : null
  await load.close()
  return report(flags, facts, baseline, peer, tessera, env.config.databasePoolMax, onCluster)
}

/** The resume scenario's session: its cookie, and how to publish the events its tab misses. */
function resumeOf(tessera: Tessera, session: { id: string; cookie: string; expiresAt: number }) {
  const expiresAt = new Date(session.expiresAt)
  return {
    cookie: session.cookie,
    async publish(count: number) {
      const events = Array.from({ length: count }, (_, i) => ({ type: 'bench.event', n: i, note: 'an event the tab missed while it was away' }))
      await Promise.all(events.map((e) => tessera.ctx.bus.publishSessionEvent(session.id, e, expiresAt)))
    },
  }
}

/** The same Tessera measurement on a private Redis Cluster: its own database, sessions and nodes. */
async function measureOnCluster(load: LoadProcess, flags: typeof defaults): Promise<TargetResult> {
  progress(NAME, 'starting a private Redis Cluster: 3 primaries, 3 replicas')
  const cluster = await privateCluster()
  onCleanup(() => cluster.stop()) // registered first: it runs after the apps and the keys are gone
  const env = await openBenchEnv(`${NAME}-cluster`, {
    REDIS_CLUSTER_NODES: cluster.seeds.join(','),
    ...(flags['db-pool'] > 0 ? { DATABASE_POOL_MAX: String(flags['db-pool']) } : {}),
  })
  const nodes: { tessera: Tessera; address: string }[] = []
  for (let i = 0; i < flags.nodes; i++) nodes.push(await env.node())
  const seeded = await seedSessions(`${NAME}-cluster`, nodes[0]!.tessera, flags.sessions + 1, { platformsPerUser: 2, usernamePrefix: 'bench-user-' })
  const resumeSession = seeded.pop()!
  return measure(
    load,
    {
      label: 'tessera on cluster',
      addresses: nodes.map((n) => n.address),
      resume: resumeOf(nodes[0]!.tessera, resumeSession),
      dialect: 'tessera',
      profile: false,
      writes: countWrites(env.config.databaseUrl, env.config.redisUrl, cluster.seeds),
    },
    seeded.map(({ id, cookie, csrf, platforms }) => ({ id, cookie, csrf, platforms })),
    flags,
  )
}

function report(flags: typeof defaults, facts: Awaited<ReturnType<typeof machineFacts>>, b: TargetResult, p: TargetResult, t: TargetResult, poolMax: number, c: TargetResult | null) {
  const sockets = flags.sessions * 2
  const variant = flags.nodes === 2 ? 'P8' : 'P1'
  const perSwitchUs = (r: TargetResult) => (1000 * r.server.cpuMs) / Math.max(1, r.switches.sent)
  const errs = (r: TargetResult) => `${r.switches.errorCount}${r.switches.errorCount ? ` (${Object.entries(r.switches.errors).map(([k, v]) => `${k}: ${v}`).join(', ')})` : ''}`
  const header = ['', 'baseline (bare ws + Redis)', 'Socket.IO + Redis adapter', 'Tessera', 'Tessera / baseline', 'Tessera / Socket.IO']
  /** A row of the three targets' figures; with `n`, the two ratios of Tessera's figure to the others'. */
  const row = (label: string, f: (r: TargetResult) => string, n?: (r: TargetResult) => number) => [
    label,
    f(b),
    f(p),
    f(t),
    n ? ratio(n(t), n(b)) : '',
    n ? ratio(n(t), n(p)) : '',
  ]
  const pair = (x: number, y: number) => `${ms(x)} / ${ms(y)}`
  const writes = (w: { postgres: number; redis: number }) => (Number.isNaN(w.postgres) ? '—' : `${w.postgres.toFixed(1)} / ${w.redis.toFixed(1)}`)
  const rows = [
    row('sockets open', (r) => num(r.connect.open)),
    row('handshake (upgrade → welcome) p50 ms', (r) => ms(r.connect.handshake.p50), (r) => r.connect.handshake.p50),
    row('handshake p99 ms', (r) => ms(r.connect.handshake.p99), (r) => r.connect.handshake.p99),
    row('connects/s while opening', (r) => num(r.connect.connectsPerSecond), (r) => r.connect.connectsPerSecond),
    row('switches sent (achieved rate/s)', (r) => `${num(r.switches.sent)} (${num(r.switches.achievedRate)})`),
    row('not sent: every session had a switch in flight', (r) => num(r.switches.skipped)),
    row('switch → tab B: measured', (r) => num(r.switches.latency.count)),
    row('errors', errs),
    row('p50 ms', (r) => ms(r.switches.latency.p50), (r) => r.switches.latency.p50),
    row('p90 ms', (r) => ms(r.switches.latency.p90), (r) => r.switches.latency.p90),
    row('p99 ms', (r) => ms(r.switches.latency.p99), (r) => r.switches.latency.p99),
    row('p99.9 ms', (r) => ms(r.switches.latency.p999), (r) => r.switches.latency.p999),
    row('max ms', (r) => ms(r.switches.latency.max), (r) => r.switches.latency.max),
    row('p99 from the schedule (corrected for coordinated omission) ms', (r) => ms(r.switches.latencyFromSchedule.p99), (r) => r.switches.latencyFromSchedule.p99),
    row('HTTP answer to tab A p50 / p99 ms', (r) => pair(r.switches.answer.p50, r.switches.answer.p99), (r) => r.switches.answer.p99),
    row('server CPU during switches (% of one core)', (r) => percent(r.server.cpuPercent, 100), (r) => r.server.cpuPercent),
    row('server CPU per switch µs (incl. idle sockets)', (r) => num(perSwitchUs(r)), perSwitchUs),
    row('PostgreSQL / Redis writes per switch', (r) => writes(r.writesPerSwitch)),
    row('server event-loop delay p99 / max ms', (r) => pair(r.server.loopDelayP99Ms, r.server.loopDelayMaxMs)),
    row('load generator schedule lag p99 ms', (r) => ms(r.switches.scheduleLag.p99)),
    row('sockets closed during switches', (r) => num(r.switches.socketsClosed)),
    row(`resume of ${flags['resume-events']} events: rounds`, (r) => (r === p ? '—' : num(r.resume.count))),
    row('resume hello → last replayed p50 ms', (r) => (r === p ? '—' : ms(r.resume.p50))),
    row('resume p99 ms', (r) => (r === p ? '—' : ms(r.resume.p99))),
    row('PostgreSQL / Redis writes per resume', (r) => (r === p ? '—' : writes(r.writesPerResume))),
    row('resume: all replayed, in order', (r) => (r === p ? '—' : `${r.resume.allReplayed && r.resume.inOrder}`)),
  ]

  const lat = t.switches.latency
  const scaleNote = sockets < 10_000 ? ` (at ${num(sockets)} sockets; ${variant} asks 10,000)` : ''
  // A switch that was lost, failed or could not even be sent (service saturated) fails the targets.
  const noErrors = t.switches.errorCount === 0 && t.switches.skipped === 0
  const yes = (ok: boolean) => (ok ? 'met' : '**not met**')
  const targets = [
    [`${variant} p50 ≤ 5 ms`, `${ms(lat.p50)} ms`, yes(lat.p50 <= 5 && noErrors) + scaleNote],
    [`${variant} p99 ≤ 50 ms`, `${ms(lat.p99)} ms`, yes(lat.p99 <= 50 && noErrors) + scaleNote],
    [`${variant} p99 ≤ 2 × baseline p99`, `${ratio(lat.p99, b.switches.latency.p99)} (baseline ${ms(b.switches.latency.p99)} ms)`, yes(lat.p99 <= 2 * b.switches.latency.p99 && noErrors) + scaleNote],
    [
      `P11 all ${flags['resume-events']} replayed in order, p99 ≤ 100 ms`,
      `${ms(t.resume.p99)} ms over ${t.resume.count} rounds`,
      yes(t.resume.p99 <= 100 && t.resume.inOrder && t.resume.allReplayed),
    ],
    [
      `${variant} p99 below Socket.IO's (the peer)`,
      `${ratio(lat.p99, p.switches.latency.p99)} (Socket.IO ${ms(p.switches.latency.p99)} ms)`,
      yes(lat.p99 < p.switches.latency.p99 && noErrors) + scaleNote,
    ],
    [
      'P10-style: handshake p99 ≤ 200 ms (set-up phase, not the churn test)',
      `${ms(t.connect.handshake.p99)} ms at ${num(t.connect.connectsPerSecond)} connects/s`,
      `${yes(t.connect.handshake.p99 <= 200)} (informative)`,
    ],
  ]

  // Tessera on one Redis beside Tessera on a Redis Cluster (--cluster).
  const clusterHeader = ['', 'Tessera, one Redis', 'Tessera, Redis Cluster (3 primaries)', 'Cluster / one Redis']
  const both = (label: string, f: (r: TargetResult) => string, n?: (r: TargetResult) => number) => [label, f(t), c ? f(c) : '', c && n ? ratio(n(c), n(t)) : '']
  const clusterRows = c
    ? [
        both('switch → tab B: measured (errors)', (r) => `${num(r.switches.latency.count)} (${errs(r)})`),
        both('p50 ms', (r) => ms(r.switches.latency.p50), (r) => r.switches.latency.p50),
        both('p99 ms', (r) => ms(r.switches.latency.p99), (r) => r.switches.latency.p99),
        both('p99.9 ms', (r) => ms(r.switches.latency.p999), (r) => r.switches.latency.p999),
        both('HTTP answer to tab A p50 / p99 ms', (r) => pair(r.switches.answer.p50, r.switches.answer.p99), (r) => r.switches.answer.p99),
        both('handshake p99 ms', (r) => ms(r.connect.handshake.p99), (r) => r.connect.handshake.p99),
        both('server CPU per switch µs (incl. idle sockets)', (r) => num(perSwitchUs(r)), perSwitchUs),
        both('PostgreSQL / Redis writes per switch', (r) => writes(r.writesPerSwitch)),
        both('resume p99 ms', (r) => ms(r.resume.p99), (r) => r.resume.p99),
        both('resume: all replayed, in order', (r) => `${r.resume.allReplayed && r.resume.inOrder}`),
      ]
    : []

  console.log(`\nFan-out, ${flags.nodes} node(s): ${flags.sessions} sessions × 2 tabs, ${flags.rate} switches/s for ${flags.seconds} s`)
  console.log(textTable(header, rows))
  console.log(`\n${textTable(['target', 'Tessera', 'verdict'], targets)}`)
  if (c) console.log(`\nOn a Redis Cluster (private, 3 primaries + 3 replicas on this machine):\n${textTable(clusterHeader, clusterRows)}`)
  if (t.hotspots) printHotspots("Tessera's switch phase", t.hotspots)

  if (flags.write) {
    const experiment = experimentOf(flags)
    const id = (flags.nodes === 2 ? 'fanout-2-nodes' : 'fanout-1-node') + experiment.suffix
    const title = (flags.nodes === 2 ? 'Fan-out across two API nodes (P8, P11)' : 'Fan-out on one API node (P1, P11)') + experiment.note
    const cmd = `npx tsx scripts/bench/fanout.ts ${process.argv.slice(2).join(' ')}`.trimEnd()
    writeSection(
      id,
      `## ${title}

- **Run:** \`${cmd}\`
- **Machine:** ${factsLine(facts)}, at the end ${loadAverage()}. The load on the machine was not
  controlled (other test runs may have been going on): re-measure on a quiet machine before
  reading much into absolute figures.
- **Load:** ${flags.sessions} sessions × 2 tabs = ${num(sockets)} sockets${flags.nodes === 2 ? ', tab A on node 1 and tab B on node 2 (one Redis)' : ''}; ${flags.rate} platform
  switches/s through \`POST /api/switch_platform/:id\` (cookie, CSRF token, \`X-Tab-Id\` of tab A) to
  random sessions for ${flags.seconds} s after ${flags.warmup} s of warm-up, each timed from just before its request
  leaves to the \`platform.switched\` frame arriving at tab B (both timestamps in the load generator). The
  row "from the schedule" times each from when the open-loop schedule wanted it sent instead, so a
  load generator held up by a slow server cannot hide the wait (coordinated omission).
- **Resume:** one tab closes, ${flags['resume-events']} events are published, it reconnects with \`lastSeq\`; timed
  from \`hello\` to the last replayed frame, ${flags['resume-rounds']} rounds.
- **Baseline:** a bare \`ws\` server on a bare HTTP server: one \`PUBLISH\` per request to a
  per-session channel, one subscriber connection relaying to the session's sockets, resume by
  one pipelined \`GET\` + \`XRANGE\`.
- **Peer:** Socket.IO 4 with \`@socket.io/redis-adapter\` on the same Redis, what a team would
  pick instead: the same POST emits the same frame to a room per session (the adapter publishes
  it for the other nodes), spoken to over its WebSocket transport by the same load generator.
  It has no event log, so no resume.
- **Where:** Tessera (the baseline and the peer) in the benchmark's process, the load generator in a
  child process. Server CPU is the whole server process over the switch phase; writes are
  socket writes of the server process to PostgreSQL and Redis (about one per round trip).
- **Tessera's configuration:** the default but for \`DATABASE_POOL_MAX\` ${poolMax} and the API rate limit,
  raised so that nothing is answered 429 (the limiter still runs).

${markdownTable(header, rows)}

${markdownTable(['target', 'Tessera', 'verdict'], targets)}
${
  c
    ? `
Tessera on one Redis beside Tessera on a Redis Cluster (\`--cluster\`: a private cluster of 3 primaries
and 3 replicas started on this machine, so its nodes share the cores with everything else; a real
cluster has a machine per node). Session channels are shard channels there (\`SSUBSCRIBE\`/\`SPUBLISH\`).

${markdownTable(clusterHeader, clusterRows)}
`
    : ''
}`,
    )
  }
  const verdict = (i: number) => targets[i]![2]!
  /** A switch → tab B percentile beside the baseline's and the peer's. */
  const switchRow = (q: 'p50' | 'p99', target: string, verdictText: string) => ({
    figure: `${variant} switch → tab B ${q} ms`,
    target,
    baseline: ms(b.switches.latency[q]),
    peer: ms(p.switches.latency[q]),
    tessera: ms(lat[q]),
    ratio: `${ratio(lat[q], b.switches.latency[q])}; ${ratio(lat[q], p.switches.latency[q])} of the peer`,
    verdict: verdictText,
  })
  return {
    bench: `fanout (${flags.nodes} node${flags.nodes === 2 ? 's' : ''}, ${num(sockets)} sockets)`,
    rows: [
      switchRow('p50', '≤ 5', verdict(0)),
      switchRow('p99', '≤ 50, ≤ 2 × baseline, below the peer', `${verdict(1)}; ≤ 2×: ${verdict(2)}; below the peer: ${verdict(4)}`),
      {
        figure: 'P11 resume of 500 events p99 ms',
        target: '≤ 100, all in order',
        baseline: ms(b.resume.p99),
        peer: '—',
        tessera: ms(t.resume.p99),
        ratio: ratio(t.resume.p99, b.resume.p99),
        verdict: verdict(3),
      },
      ...(c
        ? [
            {
              figure: `${variant} on a Redis Cluster: switch → tab B p99 ms`,
              target: '≤ 50',
              baseline: '—',
              peer: '—',
              tessera: ms(c.switches.latency.p99),
              ratio: `${ratio(c.switches.latency.p99, lat.p99)} of one Redis`,
              verdict: (c.switches.latency.p99 <= 50 ? 'met' : '**not met**') + (c.switches.errorCount === 0 ? '' : `; ${c.switches.errorCount} errors`),
            },
          ]
        : []),
    ],
  }
}

void runBenchmark(NAME, main)
