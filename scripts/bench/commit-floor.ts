// What one durable PostgreSQL commit costs on this machine at P1's pace, against a round trip
// that commits nothing: the floor under a switch that must be on disk before any tab hears of it.
//
// P1's baseline relays a switch through Redis and writes nothing; Tessera's switch commits one
// statement first (platforms/switch.ts). This times, one statement at a time on one connection
// and spaced as P1's 200 switches/s are (one every 5 ms):
//   - a Redis round trip (PING) and a PostgreSQL round trip (`select 1`), which commit nothing;
//   - a one-row insert that commits, durably (as every switch does) and with
//     synchronous_commit off (PostgreSQL answers before its log is on disk: the flush's share);
//   - Tessera's own switch statement (runSwitch), on signed-in sessions with two platforms each;
//   - the durable insert again, back to back with no pause (a busy machine's figure).
// Each kind runs for one second at a time, taking turns, so that the machine's drift falls on
// all of them alike. The baseline is the PostgreSQL round trip.
//
//   npx tsx scripts/bench/commit-floor.ts [--seconds 10] [--rate 200]
import { setTimeout as sleep } from 'node:timers/promises'
import postgres from 'postgres'
import type { Tessera } from '../../src/app.js'
import { runSwitch } from '../../src/platforms/switch.js'
import { factsLine, loadAverage, machineFacts, onCleanup, openBenchEnv, parseFlags, runBenchmark } from './harness.js'
import { progress } from './load-process.js'
import { writeSection } from './report.js'
import { type SeededSession, seedSessions } from './seed.js'
import { markdownTable, ms, num, ratio, type Summary, summarize } from './stats.js'

const NAME = 'commit-floor'

const defaults = { seconds: 10, rate: 200, sessions: 1000, write: true }
const help: Record<keyof typeof defaults, string> = {
  seconds: 'seconds each kind of statement is timed (in turns of one second)',
  rate: 'statements per second, one at a time (P1: 200 switches/s)',
  sessions: 'signed-in sessions the switch statement takes turns with',
  write: 'refresh this section of docs/benchmarks.md (--write=false to skip)',
}
type Flags = typeof defaults

type KindId = 'ping' | 'select' | 'insert' | 'lazyInsert' | 'switch' | 'busyInsert'

interface Kind {
  id: KindId
  label: string
  /** For the progress line. */
  short: string
  /** Spaced at the rate, or back to back. */
  paced: boolean
  run: (i: number) => Promise<unknown>
}

/** `lazy`: a connection of its own with synchronous_commit off. */
function kindsOf(tessera: Tessera, sessions: SeededSession[], lazy: postgres.Sql): Kind[] {
  const { sql, db } = tessera.ctx.database
  const redis = tessera.ctx.redis
  const insert = (i: number) => sql`insert into bench_commit_floor (n) values (${i})`
  const switched = new Map<string, number>()
  const nextSwitch = (i: number) => {
    const s = sessions[i % sessions.length]!
    const n = (switched.get(s.id) ?? 0) + 1
    switched.set(s.id, n)
    return runSwitch(db, {
      sessionId: s.id,
      userId: s.userId,
      platformId: s.platforms[n % s.platforms.length]!,
      expectedVersion: null,
      byTabId: null,
      keepUntil: new Date(s.expiresAt),
      audit: true,
    })
  }
  return [
    { id: 'ping', label: 'Redis round trip (`PING`)', short: 'PING', paced: true, run: () => redis.ping() },
    { id: 'select', label: 'PostgreSQL round trip (`select 1`)', short: 'select 1', paced: true, run: () => sql`select 1` },
    { id: 'insert', label: 'one-row insert, durable commit', short: 'insert', paced: true, run: insert },
    {
      id: 'lazyInsert',
      label: 'one-row insert, `synchronous_commit` off',
      short: 'insert (no flush)',
      paced: true,
      run: (i) => lazy`insert into bench_commit_floor (n) values (${i})`,
    },
    { id: 'switch', label: 'Tessera’s switch statement, durable commit', short: 'switch', paced: true, run: nextSwitch },
    { id: 'busyInsert', label: 'one-row insert, durable commit, back to back', short: 'insert (back to back)', paced: false, run: insert },
  ]
}

/** One second of a kind: paced statements start on the rate's schedule (a late one starts at once). */
async function turn(kind: Kind, rate: number, samples: number[], start: number): Promise<number> {
  const until = performance.now() + 1000
  const gapMs = 1000 / rate
  let next = performance.now()
  let i = start
  while (performance.now() < until) {
    if (kind.paced) {
      const wait = next - performance.now()
      if (wait > 0) await sleep(wait)
      next += gapMs
    }
    const t = performance.now()
    await kind.run(i++)
    samples.push(performance.now() - t)
  }
  return i
}

async function main() {
  const flags = parseFlags(NAME, defaults, help) as Flags
  const env = await openBenchEnv(NAME)
  const facts = await machineFacts(env.resources)
  progress(NAME, `${facts.nproc} cores, Node ${facts.node}, load average ${facts.loadAtStart}`)
  const { tessera } = await env.node()
  const { sql } = tessera.ctx.database
  await sql`create table bench_commit_floor (id bigserial primary key, n int not null, at timestamptz not null default now())`
  const sessions = await seedSessions(NAME, tessera, flags.sessions, { platformsPerUser: 2, usernamePrefix: 'bench-commit-' })
  const lazy = postgres(env.databaseUrl, { max: 1, onnotice: () => {}, connection: { synchronous_commit: 'off' } })
  onCleanup(() => lazy.end())
  const kinds = kindsOf(tessera, sessions, lazy)
  const samples = kinds.map(() => [] as number[])
  let i = 0
  for (let round = 0; round < flags.seconds; round++) {
    for (const [k, kind] of kinds.entries()) i = await turn(kind, flags.rate, samples[k]!, i)
    // The switches' outbox rows are published and deleted by Tessera after each switch; here nobody publishes them.
    await sql`delete from session_event_outbox`
    progress(NAME, `turn ${round + 1}/${flags.seconds}, p50 so far: ${kinds.map((kind, k) => `${kind.short} ${ms(summarize(samples[k]!).p50)}`).join(' · ')} ms`)
  }
  return report(flags, facts, kinds, samples.map(summarize))
}

function report(flags: Flags, facts: Awaited<ReturnType<typeof machineFacts>>, kinds: Kind[], s: Summary[]) {
  const of = (id: KindId) => s[kinds.findIndex((k) => k.id === id)]!
  const base = of('select')
  const header = ['statement, one at a time', 'pace', 'timed', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'p99 / `select 1`']
  const rows = kinds.map((kind, k) => [
    kind.label,
    kind.paced ? `${num(flags.rate)}/s` : 'back to back',
    num(s[k]!.count),
    ms(s[k]!.p50),
    ms(s[k]!.p90),
    ms(s[k]!.p99),
    ms(s[k]!.max),
    ratio(s[k]!.p99, base.p99),
  ])
  const text = markdownTable(header, rows)
  const [redis, durable, lazy, tesseraSwitch, busy] = (['ping', 'insert', 'lazyInsert', 'switch', 'busyInsert'] as const).map(of) as [Summary, Summary, Summary, Summary, Summary]
  console.log(`\n${text}\n`)
  console.log(`a durable commit at ${num(flags.rate)}/s: p50 ${ms(durable.p50)} ms, p99 ${ms(durable.p99)} ms (back to back: ${ms(busy.p50)} / ${ms(busy.p99)}); Tessera's switch statement p99 ${ms(tesseraSwitch.p99)} ms`)
  if (flags.write) {
    writeSection(
      NAME,
      `## The floor under a durable switch: one commit (P1, P8)

- **Run:** \`npx tsx scripts/bench/commit-floor.ts\`
- **Machine:** ${factsLine(facts)}, at the end ${loadAverage()}.

P1's baseline relays a switch through Redis and writes nothing. Tessera's switch commits one PostgreSQL
statement before any tab hears of it. This times single statements on one connection, one at a time, spaced as
P1's ${num(flags.rate)} switches/s are, each kind for one second at a time in turns (${num(flags.seconds)} turns each);
Tessera's switch statement runs on ${num(flags.sessions)} signed-in sessions with two platforms each.
Baseline: a PostgreSQL round trip that commits nothing.

${text}

At P1's pace a durable commit takes ${ms(durable.p50)} ms at the median and ${ms(durable.p99)} ms at p99 here; with
\`synchronous_commit\` off (no wait for the log's flush) ${ms(lazy.p50)} / ${ms(lazy.p99)} ms, and back to back
${ms(busy.p50)} / ${ms(busy.p99)} ms. A Redis round trip at the same pace: ${ms(redis.p50)} / ${ms(redis.p99)} ms.
`,
    )
  }
  return {
    bench: `commit floor (${num(flags.rate)}/s)`,
    rows: [
      {
        figure: 'P1 floor: a durable commit, p99 ms (Tessera: its switch statement)',
        target: 'reported',
        baseline: ms(base.p99),
        peer: '—',
        tessera: `${ms(tesseraSwitch.p99)} (one-row insert ${ms(durable.p99)})`,
        ratio: ratio(tesseraSwitch.p99, base.p99),
        verdict: 'reported',
      },
    ],
  }
}

void runBenchmark(NAME, main)
