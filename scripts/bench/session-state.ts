// GET /api/session_state benchmark (P5).
//
// Tessera runs in this process (openResources + buildApp, 127.0.0.1:0) with one signed-in
// session per connection; the baseline is a bare Fastify route in this same process that
// returns a constant object (a copy of a real session_state answer, so the bytes on the
// wire match). The load generator (session-state-load.ts, a child process) runs a closed
// loop with N connections against each, then an open loop at a fixed rate.
//
//   npx tsx scripts/bench/session-state.ts [--connections 50] [--seconds 10] [--rate 1000]
import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import { countWrites, experimentOf, factsLine, loadAverage, machineFacts, type Meter, openBenchEnv, onCleanup, parseFlags, runBenchmark, startMeter } from './harness.js'
import { HOOK_COST_HEADER, type HookCost, hookCostRows, measureHookCosts } from './hook-costs.js'
import { LoadProcess, progress, USER_AGENT } from './load-process.js'
import { type Hotspot, printHotspots, Profiler } from './profile.js'
import { writeSection } from './report.js'
import { seedSessions } from './seed.js'
import { markdownTable, ms, num, percent, ratio, type Summary, textTable } from './stats.js'

const NAME = 'session-state'

const defaults = {
  connections: 50,
  seconds: 10,
  warmup: 2,
  sessions: 50,
  rate: 1000,
  'rate-seconds': 5,
  'db-pool': 0,
  'redis-autopipelining': false,
  profile: false,
  hooks: 3,
  write: true,
}

const help: Record<keyof typeof defaults, string> = {
  connections: 'keep-alive connections of the closed loop (P5: 50)',
  seconds: 'how long the closed loop is measured',
  warmup: 'seconds of closed loop first, not counted',
  sessions: 'signed-in sessions the loops take turns with (one per connection by default)',
  rate: 'requests per second of the fixed-rate phase (P5: 1,000)',
  'rate-seconds': 'how long the fixed-rate phase runs (0 skips it)',
  'db-pool': "Tessera's DATABASE_POOL_MAX (0: its default)",
  'redis-autopipelining': "experiment: turn on ioredis's enableAutoPipelining on Tessera's Redis connection (not what Tessera ships)",
  profile: "write a CPU profile of Tessera's closed loop and print its hot spots",
  hooks: 'seconds of closed loop for each app-wide hook on the bare route, to price each (0 skips it)',
  write: 'refresh this section of docs/benchmarks.md (--write=false to skip)',
}

type LoopResult = { requests: number; completed: number; seconds: number; rps: number; latency: Summary; errors: Record<string, number>; errorCount: number }
type Writes = { postgres: number; redis: number }

interface Phase {
  loop: LoopResult
  server: ReturnType<Meter['stop']>
  writes: Writes
  hotspots?: { file: string; hotspots: Hotspot[]; tessera: Hotspot[] }
}

async function main() {
  const flags = parseFlags(NAME, defaults, help)
  const env = await openBenchEnv(NAME, flags['db-pool'] > 0 ? { DATABASE_POOL_MAX: String(flags['db-pool']) } : {})
  const facts = await machineFacts(env.resources)
  // An experiment, reported with the figures: commands issued in one tick leave in one write.
  if (flags['redis-autopipelining']) env.resources.redis.options.enableAutoPipelining = true
  progress(NAME, `${facts.nproc} cores, Node ${facts.node}, load average ${facts.loadAtStart}`)
  const writes = countWrites(env.config.databaseUrl, env.config.redisUrl)

  const { tessera, address } = await env.node()
  const seeded = await seedSessions(NAME, tessera, Math.max(1, flags.sessions), { platformsPerUser: 1, usernamePrefix: 'bench-state-' })
  const cookies = seeded.map((s) => s.cookie)

  // The baseline answers what Tessera answers, byte for byte in size.
  const sample = await tessera.app.inject({ method: 'GET', url: '/api/session_state', headers: { cookie: cookies[0]!, 'user-agent': USER_AGENT } })
  if (sample.statusCode !== 200) throw new Error(`session_state answered ${sample.statusCode}: ${sample.body}`)
  const constant = sample.json() as object
  const bare = Fastify({ logger: false })
  bare.get('/api/session_state', async () => constant)
  onCleanup(() => bare.close())
  await bare.listen({ host: '127.0.0.1', port: 0 })
  const bareAddress = `127.0.0.1:${(bare.server.address() as { port: number }).port}`

  const load = new LoadProcess(fileURLToPath(new URL('./session-state-load.ts', import.meta.url)))
  onCleanup(() => load.close())

  const targets = {
    baseline: { label: 'baseline', address: bareAddress, path: '/api/session_state', cookies },
    tessera: { label: 'tessera', address, path: '/api/session_state', cookies },
  }

  const run = async (target: typeof targets.baseline, cmd: 'closedLoop' | 'fixedRate', profile: boolean): Promise<Phase> => {
    const args =
      cmd === 'closedLoop'
        ? { ...target, connections: flags.connections, seconds: flags.seconds, warmup: flags.warmup }
        : { ...target, connections: flags.connections, rate: flags.rate, seconds: flags['rate-seconds'] }
    progress(NAME, `${target.label}: ${cmd === 'closedLoop' ? `closed loop, ${flags.connections} connections, ${flags.warmup} s warm-up + ${flags.seconds} s` : `${flags.rate} req/s for ${flags['rate-seconds']} s`}`)
    // The meter and the profile include the warm-up; per-request figures divide by every request made.
    const profiler = profile ? new Profiler() : null
    await profiler?.start()
    const meter = startMeter()
    const before = writes()
    const loop = await load.call<LoopResult>(cmd, args)
    const server = meter.stop()
    const after = writes()
    const total = Math.max(1, loop.completed)
    const hotspots = profiler ? await profiler.stop(`session-state-${target.label}`) : undefined
    return { loop, server, writes: { postgres: (after.postgres - before.postgres) / total, redis: (after.redis - before.redis) / total }, hotspots }
  }

  const closed = { baseline: await run(targets.baseline, 'closedLoop', false), tessera: await run(targets.tessera, 'closedLoop', flags.profile) }
  const fixed =
    flags['rate-seconds'] > 0 ? { baseline: await run(targets.baseline, 'fixedRate', false), tessera: await run(targets.tessera, 'fixedRate', false) } : null
  const hooks =
    flags.hooks > 0 ? await measureHookCosts(NAME, load, constant, env.config, env.resources.redis, { connections: flags.connections, seconds: flags.hooks, warmup: flags.hooks >= 3 ? 2 : 0.5, cookies }) : null
  await load.close()
  return report(flags, facts, closed, fixed, seeded.length, env.config.databasePoolMax, hooks)
}

function report(
  flags: typeof defaults,
  facts: Awaited<ReturnType<typeof machineFacts>>,
  closed: { baseline: Phase; tessera: Phase },
  fixed: { baseline: Phase; tessera: Phase } | null,
  sessions: number,
  poolMax: number,
  hooks: HookCost[] | null,
) {
  const b = closed.baseline
  const t = closed.tessera
  const cpuPerReq = (p: Phase) => (1000 * p.server.cpuMs) / Math.max(1, p.loop.completed)
  const errs = (p: Phase) => `${p.loop.errorCount}${p.loop.errorCount ? ` (${Object.entries(p.loop.errors).map(([k, v]) => `${k}: ${v}`).join(', ')})` : ''}`
  const header = ['', 'baseline (bare Fastify route)', 'Tessera', 'Tessera / baseline']
  const rows = [
    [`closed loop, ${flags.connections} connections: requests/s`, num(b.loop.rps), num(t.loop.rps), percent(t.loop.rps, b.loop.rps)],
    ['requests measured / errors', `${num(b.loop.requests)} / ${errs(b)}`, `${num(t.loop.requests)} / ${errs(t)}`, ''],
    ['p50 ms', ms(b.loop.latency.p50), ms(t.loop.latency.p50), ratio(t.loop.latency.p50, b.loop.latency.p50)],
    ['p90 ms', ms(b.loop.latency.p90), ms(t.loop.latency.p90), ratio(t.loop.latency.p90, b.loop.latency.p90)],
    ['p99 ms', ms(b.loop.latency.p99), ms(t.loop.latency.p99), ratio(t.loop.latency.p99, b.loop.latency.p99)],
    ['max ms', ms(b.loop.latency.max), ms(t.loop.latency.max), ratio(t.loop.latency.max, b.loop.latency.max)],
    ['server CPU (% of one core)', percent(b.server.cpuPercent, 100), percent(t.server.cpuPercent, 100), ratio(t.server.cpuPercent, b.server.cpuPercent)],
    ['server CPU per request µs', num(cpuPerReq(b)), num(cpuPerReq(t)), ratio(cpuPerReq(t), cpuPerReq(b))],
    ['PostgreSQL / Redis writes per request', `${b.writes.postgres.toFixed(1)} / ${b.writes.redis.toFixed(1)}`, `${t.writes.postgres.toFixed(1)} / ${t.writes.redis.toFixed(1)}`, ''],
    ['server event-loop delay p99 / max ms', `${ms(b.server.loopDelayP99Ms)} / ${ms(b.server.loopDelayMaxMs)}`, `${ms(t.server.loopDelayP99Ms)} / ${ms(t.server.loopDelayMaxMs)}`, ''],
  ]
  if (fixed) {
    const fb = fixed.baseline.loop
    const ft = fixed.tessera.loop
    rows.push(
      [`fixed rate ${num(flags.rate)} req/s: achieved`, num(fb.rps), num(ft.rps), ''],
      ['fixed rate: errors', num(fb.errorCount), num(ft.errorCount), ''],
      ['fixed rate: p50 ms', ms(fb.latency.p50), ms(ft.latency.p50), ratio(ft.latency.p50, fb.latency.p50)],
      ['fixed rate: p99 ms', ms(fb.latency.p99), ms(ft.latency.p99), ratio(ft.latency.p99, fb.latency.p99)],
      ['fixed rate: server CPU (% of one core)', percent(fixed.baseline.server.cpuPercent, 100), percent(fixed.tessera.server.cpuPercent, 100), ratio(fixed.tessera.server.cpuPercent, fixed.baseline.server.cpuPercent)],
    )
  }
  const yes = (ok: boolean) => (ok ? 'met' : '**not met**')
  const share = t.loop.rps / b.loop.rps
  const targets = [
    ['P5 ≥ 50 % of the bare route’s requests/s (closed loop, 50 connections)', `${percent(t.loop.rps, b.loop.rps)} (${num(t.loop.rps)} vs ${num(b.loop.rps)})`, yes(share >= 0.5 && t.loop.errorCount === 0)],
    fixed
      ? [`P5 p99 ≤ 5 ms at 1,000 requests/s`, `${ms(fixed.tessera.loop.latency.p99)} ms at ${num(fixed.tessera.loop.rps)} req/s`, yes(fixed.tessera.loop.latency.p99 <= 5 && fixed.tessera.loop.errorCount === 0 && flags.rate >= 1000)]
      : ['P5 p99 ≤ 5 ms at 1,000 requests/s', 'not run', ''],
  ]

  console.log(`\nGET /api/session_state: ${flags.connections} connections, ${flags.seconds} s (after ${flags.warmup} s warm-up); fixed rate ${flags.rate}/s for ${flags['rate-seconds']} s`)
  console.log(textTable(header, rows))
  console.log(`\n${textTable(['target', 'Tessera', 'verdict'], targets)}`)
  if (hooks) console.log(`\nWhat each app-wide hook costs on the bare route (${flags.hooks} s each):\n${textTable(HOOK_COST_HEADER, hookCostRows(hooks))}`)
  if (t.hotspots) printHotspots("Tessera's closed loop", t.hotspots)

  if (flags.write) {
    const cmd = `npx tsx scripts/bench/session-state.ts ${process.argv.slice(2).join(' ')}`.trimEnd()
    const experiment = experimentOf(flags)
    writeSection(
      `session-state${experiment.suffix}`,
      `## \`GET /api/session_state\` (P5)${experiment.note}

- **Run:** \`${cmd}\`
- **Machine:** ${factsLine(facts)}, at the end ${loadAverage()}. The load on the machine was not
  controlled (other test runs may have been going on): re-measure on a quiet machine before
  reading much into absolute figures.
- **Load:** a closed loop of ${flags.connections} keep-alive connections (undici \`Pool\`), each request with the
  cookie of one of ${sessions} signed-in sessions, ${flags.warmup} s warm-up then ${flags.seconds} s measured; then an open
  loop at ${num(flags.rate)} requests/s for ${flags['rate-seconds']} s.
- **Baseline:** a bare Fastify route in the same process returning a constant copy of a real
  \`session_state\` answer (the same size on the wire).
- **Where:** Tessera and the baseline in the benchmark's process, the load generator in a child
  process. Server CPU and writes (socket writes to PostgreSQL and Redis, about one per round
  trip) are per request, warm-up included.
- **Tessera's configuration:** the default but for \`DATABASE_POOL_MAX\` ${poolMax} and the API rate limit,
  raised so that nothing is answered 429 (the limiter still runs and its Redis round trip counts).

${markdownTable(header, rows)}

${markdownTable(['target', 'Tessera', 'verdict'], targets)}
${
  hooks
    ? `
What each app-wide hook costs: the bare route alone, then with one of Tessera's hooks that run
ahead of every route, each on a Fastify instance of its own, ${flags.hooks} s of the same closed loop
each (\`scripts/bench/hook-costs.ts\`). The difference in CPU per request is that hook's price
on every request.

${markdownTable(HOOK_COST_HEADER, hookCostRows(hooks))}
`
    : ''
}`,
    )
  }
  return {
    bench: `session_state (${flags.connections} connections)`,
    rows: [
      {
        figure: 'P5 requests/s, closed loop of 50',
        target: '≥ 50 % of the bare route',
        baseline: num(b.loop.rps),
        peer: '—',
        tessera: num(t.loop.rps),
        ratio: percent(t.loop.rps, b.loop.rps),
        verdict: targets[0]![2]!,
      },
      ...(fixed
        ? [
            {
              figure: `P5 p99 ms at ${num(flags.rate)} requests/s`,
              target: '≤ 5',
              baseline: ms(fixed.baseline.loop.latency.p99),
              peer: '—',
              tessera: ms(fixed.tessera.loop.latency.p99),
              ratio: ratio(fixed.tessera.loop.latency.p99, fixed.baseline.loop.latency.p99),
              verdict: targets[1]![2]!,
            },
          ]
        : []),
    ],
  }
}

void runBenchmark(NAME, main)
