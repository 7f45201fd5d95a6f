// Idle sweep benchmark (P7).
//
// S sessions are put in presence at once (seed.ts's seedPresence: bulk SQL and pipelined
// writes of the Redis keys Sessions.open leaves), none of them due. Then:
//
// 1. Idle ticks: IdleSweep.tick() on Tessera's own context, T times with nothing due. Each
//    is paired with the baseline: one pipelined round trip of the same five
//    `ZRANGEBYSCORE … WITHSCORES LIMIT 0 1000` reads on the same lists, over the same
//    connection, which is the least a tick must do. The two take turns to go first.
// 2. Lateness: real Workers (src/jobs/workers.ts, as ROLE=all runs them) sweep once a
//    second through BullMQ. D more sessions come due at deadlines spread evenly over a
//    stretch of seconds, half by lifetime and half by idle timeout (these go through idle
//    and the warning first, as a quiet session does); then B more, all at one instant. Each
//    is timed from its deadline to its `ended_at` in PostgreSQL.
//
//   npx tsx scripts/bench/sweep.ts [--sessions 100000] [--ticks 1000] [--due 3000] [--burst 1000]
import type { Job, Queue } from 'bullmq'
import type { Tessera } from '../../src/app.js'
import { SESSION_ENDED_CONCURRENCY, SWEEP_EVERY_MS, Workers } from '../../src/jobs/workers.js'
import { IdleSweep } from '../../src/presence/sweep.js'
import type { Settings } from '../../src/settings/schemas.js'
import { countWrites, factsLine, loadAverage, type MachineFacts, machineFacts, openBenchEnv, onCleanup, parseFlags, runBenchmark } from './harness.js'
import { progress } from './load-process.js'
import { writeSection } from './report.js'
import { seedPresence } from './seed.js'
import { markdownTable, ms, num, percent, ratio, type Summary, summarize, textTable } from './stats.js'

const NAME = 'sweep'
/** What a tick reads of each list at most (sweep.ts BATCH). */
const BATCH = 1000

const defaults = {
  sessions: 100_000,
  ticks: 1000,
  warmup: 50,
  'tick-gap': 20,
  'idle-seconds': 10,
  due: 3000,
  spread: 20,
  burst: 1000,
  lead: 5,
  'sweep-every': 0,
  'ended-concurrency': 0,
  write: true,
}

const help: Record<keyof typeof defaults, string> = {
  sessions: 'sessions in presence, none of them due (P7: 100,000)',
  ticks: 'idle ticks measured (each paired with a baseline read)',
  warmup: 'idle ticks (and baseline reads) first, not counted',
  'tick-gap': 'ms between two pairs; the settings cache (500 ms) then expires every so many ticks (between the real ticks, 1 s apart, it always has)',
  'idle-seconds': 'seconds of real ticks through BullMQ with nothing due, before anything comes due',
  due: 'sessions that come due at staggered deadlines while the workers sweep (0 skips it)',
  spread: 'seconds over which those deadlines are spread evenly',
  burst: 'sessions that come due at one and the same instant (0 skips it)',
  lead: 'seconds from making sessions due to their first deadline',
  'sweep-every': `experiment: reschedule the sweep every so many ms (0: Tessera's own ${SWEEP_EVERY_MS} ms; not what Tessera ships)`,
  'ended-concurrency': `experiment: session-ended jobs run at once per worker process (0: Tessera's own ${SESSION_ENDED_CONCURRENCY})`,
  write: 'refresh this section of docs/benchmarks.md (--write=false to skip)',
}

type Flags = typeof defaults
type Kind = 'lifetime' | 'idle_timeout'

interface IdleTicks {
  baseline: number[]
  tessera: number[]
  /** Tessera's ticks that also read the settings from PostgreSQL (the cache had expired), by time. */
  settingsRead: number[]
  settingsCached: number[]
  writes: { baseline: { postgres: number; redis: number }; tessera: { postgres: number; redis: number } }
  /** Ticks that found something due: 0, or the figures are not of idle ticks. */
  foundDue: number
}

/** One run of the idle-sweep job as BullMQ recorded it. */
interface TickJob {
  id: string
  /** When the scheduler meant it to run, when a worker took it, when it finished (ms). */
  dueAt: number
  processedOn: number
  finishedOn: number
  result: { idled: number; warned: number; expired: number; lagMs: number; repaired: number }
}

interface Lateness {
  label: string
  made: number
  byKind: Record<Kind, number>
  ended: number
  wrongReason: number
  early: number
  late: Summary
  withinSecond: number
  /** Deadline → the next tick taken by a worker; that tick's start → ended_at. */
  waitForTick: Summary
  tickToEnded: Summary
  finalized: Summary
  ticks: { withEndings: number; maxEndedInOne: number; duration: Summary; sweepLagMaxMs: number }
}

// ── seeding ────────────────────────────────────────────────────────────────────

/** The sessions that stay in presence: input within the last minute, nowhere near a deadline. */
async function seedQuietSessions(tessera: Tessera, count: number, s: Settings) {
  const now = Date.now()
  const lifetime = s.lifetimeSeconds * 1000
  return seedPresence(NAME, tessera, count, {
    usernamePrefix: 'bench-sweep-',
    times: () => ({ lastActivity: now - Math.floor(Math.random() * 60_000), expiresAt: now + lifetime - Math.floor(Math.random() * 60_000) }),
  })
}

/**
 * Sessions whose deadline is `deadlines[i]`: even ones by lifetime (recent input, the
 * lifetime ends then), odd ones by idle timeout (last input one timeout before). The idle
 * ones are due for `session.idle` and the warning at once, so the sweep moves them on first.
 */
async function seedDueSessions(tessera: Tessera, label: string, deadlines: number[], s: Settings) {
  const now = Date.now()
  const kindOf = (i: number): Kind => (i % 2 === 0 ? 'lifetime' : 'idle_timeout')
  const seeded = await seedPresence(NAME, tessera, deadlines.length, {
    usernamePrefix: `bench-${label}-`,
    times: (i) =>
      kindOf(i) === 'lifetime'
        ? { expiresAt: deadlines[i]!, lastActivity: now }
        : { expiresAt: now + s.lifetimeSeconds * 1000, lastActivity: deadlines[i]! - s.idleTimeoutSeconds * 1000 },
  })
  const early = Math.min(...deadlines) - Date.now()
  if (early < 0) throw new Error(`seeding took longer than --lead: the first deadline passed ${-early} ms before all sessions were in place`)
  return seeded.map((x, i) => ({ id: x.id, kind: kindOf(i), deadline: deadlines[i]! }))
}

// ── 1. idle ticks against the baseline ─────────────────────────────────────────

/** The ranges a tick reads (sweep.ts readDue): each list up to where its next step falls due. */
function dueRanges(k: Tessera['ctx']['keys'], s: Settings, now: number): [string, number][] {
  const idleAfter = s.idleAfterSeconds * 1000
  const timeout = s.idleTimeoutSeconds * 1000
  const warnAfter = s.idleWarningSeconds > 0 ? timeout - s.idleWarningSeconds * 1000 : null
  return k.deadlineShards.flatMap((d): [string, number][] => [
    [d.active, now - Math.min(idleAfter, warnAfter ?? idleAfter)],
    [d.warnedEarly, now - idleAfter],
    [d.idle, now - (warnAfter ?? timeout)],
    [d.warned, now - timeout],
    [d.lifetime, now],
  ])
}

async function measureIdleTicks(tessera: Tessera, flags: Flags, writes: () => { postgres: number; redis: number }): Promise<IdleTicks> {
  const { ctx } = tessera
  const redis = ctx.redis
  const sweep = new IdleSweep({ db: ctx.database.db, redis, keys: ctx.keys, audit: ctx.audit, bus: ctx.bus, sessions: ctx.sessions, settings: ctx.settings })
  const settings = await ctx.settings.get()
  const bare = async () => {
    const pipeline = redis.pipeline()
    for (const [key, max] of dueRanges(ctx.keys, settings, Date.now())) pipeline.zrangebyscore(key, '-inf', max, 'WITHSCORES', 'LIMIT', 0, BATCH)
    const replies = (await pipeline.exec()) ?? []
    return replies.reduce((n, [err, flat]) => {
      if (err) throw err
      return n + (flat as string[]).length
    }, 0)
  }
  const out: IdleTicks = {
    baseline: [],
    tessera: [],
    settingsRead: [],
    settingsCached: [],
    writes: { baseline: { postgres: 0, redis: 0 }, tessera: { postgres: 0, redis: 0 } },
    foundDue: 0,
  }
  const total = flags.warmup + flags.ticks
  progress(NAME, `idle ticks: ${flags.warmup} + ${flags.ticks}, each paired with a baseline read, ${flags['tick-gap']} ms apart`)
  let lastReport = performance.now()
  for (let i = 0; i < total; i++) {
    const counted = i >= flags.warmup
    for (const who of i % 2 === 0 ? (['baseline', 'tessera'] as const) : (['tessera', 'baseline'] as const)) {
      const before = writes()
      const t0 = performance.now()
      const found = who === 'tessera' ? await sweep.tick().then((r) => r.idled + r.warned + r.expired) : await bare()
      const took = performance.now() - t0
      const after = writes()
      if (!counted) continue
      if (found > 0) out.foundDue++
      out[who].push(took)
      out.writes[who].postgres += after.postgres - before.postgres
      out.writes[who].redis += after.redis - before.redis
      if (who === 'tessera') (after.postgres > before.postgres ? out.settingsRead : out.settingsCached).push(took)
    }
    if (flags['tick-gap'] > 0) await sleep(flags['tick-gap'])
    if (performance.now() - lastReport > 2000) {
      lastReport = performance.now()
      progress(NAME, `idle ticks: ${i + 1}/${total}`)
    }
  }
  const n = Math.max(1, flags.ticks)
  for (const w of Object.values(out.writes)) {
    w.postgres /= n
    w.redis /= n
  }
  return out
}

// ── 2. the real sweep through BullMQ ───────────────────────────────────────────

/** Collects the idle-sweep queue's finished jobs (BullMQ keeps the last 100) as they come. */
class TickJobs {
  private readonly seen = new Map<string, TickJob>()
  private readonly timer: NodeJS.Timeout

  constructor(private readonly queue: Queue) {
    this.timer = setInterval(() => void this.poll().catch(() => {}), 5000)
  }

  async poll(): Promise<void> {
    for (const j of (await this.queue.getJobs(['completed'], 0, 99)) as Job[]) {
      if (!j.id || !j.processedOn || !j.finishedOn) continue
      // A scheduler's job id names the time it was due: repeat:idle-sweep:<ms>.
      const dueAt = Number(/:(\d+)$/.exec(j.id)?.[1] ?? Number.NaN)
      this.seen.set(j.id, { id: j.id, dueAt, processedOn: j.processedOn, finishedOn: j.finishedOn, result: j.returnvalue })
    }
  }

  /** The jobs a worker took between `from` and `to` (ms), in order. */
  async between(from: number, to: number): Promise<TickJob[]> {
    await this.poll()
    return [...this.seen.values()].filter((j) => j.processedOn >= from && j.processedOn < to).sort((a, b) => a.processedOn - b.processedOn)
  }

  async failed(): Promise<number> {
    return (await this.queue.getJobCounts('failed')).failed ?? 0
  }

  stop() {
    clearInterval(this.timer)
  }
}

/** Waits for the first run of a queue's scheduled job to finish; returns how long it took (ms). */
async function firstRun(queue: Queue, what: string, timeoutMs: number): Promise<number> {
  const until = Date.now() + timeoutMs
  let lastReport = Date.now()
  for (;;) {
    const [done] = (await queue.getJobs(['completed', 'failed'], 0, 0)) as Job[]
    if (done?.finishedOn && done.processedOn) {
      if (done.failedReason) throw new Error(`${what} failed: ${done.failedReason}`)
      return done.finishedOn - done.processedOn
    }
    if (Date.now() > until) throw new Error(`${what} did not finish within ${timeoutMs / 1000} s`)
    if (Date.now() - lastReport > 5000) {
      lastReport = Date.now()
      progress(NAME, `waiting for ${what}…`)
    }
    await sleep(250)
  }
}

async function waitForEndings(tessera: Tessera, ids: string[], lastDeadline: number): Promise<void> {
  const { sql } = tessera.ctx.database
  const giveUpAt = lastDeadline + 30_000
  let lastReport = 0
  for (;;) {
    const [row] = await sql`select count(*)::int as n from sessions where id = any(${ids}::uuid[]) and status = 'ended'`
    const ended = row!.n as number
    const now = Date.now()
    if (ended === ids.length || now > giveUpAt) return
    if (now - lastReport > 2000) {
      lastReport = now
      const left = lastDeadline - now
      progress(NAME, `ended ${ended}/${ids.length}${left > 0 ? `, last deadline in ${(left / 1000).toFixed(0)} s` : ''}`)
    }
    await sleep(500)
  }
}

async function lateness(
  tessera: Tessera,
  jobs: TickJobs,
  label: string,
  due: { id: string; kind: Kind; deadline: number }[],
  from: number,
  to: number,
): Promise<Lateness> {
  const { sql } = tessera.ctx.database
  const rows = await sql`select id, status, end_reason, ended_at, finalized_at from sessions where id = any(${due.map((d) => d.id)}::uuid[])`
  const byId = new Map(rows.map((r) => [r.id as string, r]))
  const ticks = await jobs.between(from, to)
  const late: number[] = []
  const waitForTick: number[] = []
  const tickToEnded: number[] = []
  const finalized: number[] = []
  let wrongReason = 0
  let early = 0
  for (const d of due) {
    const r = byId.get(d.id)
    if (r?.status !== 'ended') continue
    const endedAt = (r.ended_at as Date).getTime()
    if (r.end_reason !== d.kind) wrongReason++
    if (endedAt < d.deadline) early++
    late.push(endedAt - d.deadline)
    if (r.finalized_at) finalized.push((r.finalized_at as Date).getTime() - endedAt)
    const next = ticks.find((t) => t.processedOn >= d.deadline)
    if (next && next.processedOn <= endedAt) {
      waitForTick.push(next.processedOn - d.deadline)
      tickToEnded.push(endedAt - next.processedOn)
    }
  }
  const withEndings = ticks.filter((t) => t.result.expired > 0)
  return {
    label,
    made: due.length,
    byKind: { lifetime: due.filter((d) => d.kind === 'lifetime').length, idle_timeout: due.filter((d) => d.kind === 'idle_timeout').length },
    ended: late.length,
    wrongReason,
    early,
    late: summarize(late),
    withinSecond: late.filter((l) => l <= 1000).length,
    waitForTick: summarize(waitForTick),
    tickToEnded: summarize(tickToEnded),
    finalized: summarize(finalized),
    ticks: {
      withEndings: withEndings.length,
      maxEndedInOne: Math.max(0, ...withEndings.map((t) => t.result.expired)),
      duration: summarize(withEndings.map((t) => t.finishedOn - t.processedOn)),
      sweepLagMaxMs: Math.max(0, ...withEndings.map((t) => t.result.lagMs)),
    },
  }
}

async function measureLateness(tessera: Tessera, flags: Flags, settings: Settings) {
  const { ctx } = tessera
  const workers = new Workers(ctx, {
    locks: ctx.locks,
    log: tessera.app.log,
    ...(flags['ended-concurrency'] > 0 ? { sessionEndedConcurrency: flags['ended-concurrency'] } : {}),
  })
  onCleanup(() => workers.close())
  const jobs = new TickJobs(ctx.queues.all.idleSweep)
  onCleanup(async () => jobs.stop())
  progress(NAME, 'starting the workers (the sweep every second, the cleanup once at start)')
  await workers.start()
  if (flags['sweep-every'] > 0) {
    // The same scheduler id: this replaces Tessera's schedule rather than adding ticks.
    const repeat = { removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } }
    await ctx.queues.all.idleSweep.upsertJobScheduler('idle-sweep', { every: flags['sweep-every'] }, { name: 'tick', opts: repeat })
  }
  // The cleanup runs when workers start and goes over every deadline list: let it finish first.
  const cleanupMs = await firstRun(ctx.queues.all.cleanup, 'the cleanup run at start', 600_000)
  progress(NAME, `cleanup at start took ${(cleanupMs / 1000).toFixed(1)} s; ${flags['idle-seconds']} s of real ticks with nothing due`)
  const idleFrom = Date.now()
  await sleep(flags['idle-seconds'] * 1000)
  const idleJobs = await jobs.between(idleFrom, Date.now())

  const phases: Lateness[] = []
  const run = async (label: string, deadlines: number[]) => {
    if (deadlines.length === 0) return
    const from = Date.now()
    const due = await seedDueSessions(tessera, label, deadlines, settings)
    const last = Math.max(...deadlines)
    progress(NAME, `${label}: ${due.length} sessions due from ${new Date(Math.min(...deadlines)).toISOString().slice(11, 23)} to ${new Date(last).toISOString().slice(11, 23)}`)
    await waitForEndings(tessera, due.map((d) => d.id), last)
    // The job that ended the last of them has finished by now, or will in a moment.
    await sleep(1500)
    phases.push(await lateness(tessera, jobs, label, due, from, Date.now()))
  }
  const lead = flags.lead * 1000
  await run('staggered', Array.from({ length: flags.due }, (_, i) => Date.now() + lead + Math.floor((i * flags.spread * 1000) / flags.due)))
  // A random instant, not one in step with the ticks.
  const instant = Date.now() + lead + Math.floor(Math.random() * 1000)
  await run('burst', Array.from({ length: flags.burst }, () => instant))
  const failed = await jobs.failed()
  await workers.close()
  jobs.stop()
  return { cleanupMs, idleJobs, phases, failed }
}

// ── main and report ────────────────────────────────────────────────────────────

async function main() {
  const flags = parseFlags(NAME, defaults, help)
  if (flags.sessions < 1) throw new Error('--sessions must be at least 1')
  if (flags.ticks < 1) throw new Error('--ticks must be at least 1')
  if (flags.due > 0 && flags.spread <= 0) throw new Error('--spread must be more than 0')
  const env = await openBenchEnv(NAME)
  const facts = await machineFacts(env.resources)
  progress(NAME, `${facts.nproc} cores, Node ${facts.node}, load average ${facts.loadAtStart}`)
  const writes = countWrites(env.config.databaseUrl, env.config.redisUrl)
  const { tessera } = await env.node()
  const settings = await tessera.ctx.settings.get()

  const seedStarted = performance.now()
  const quiet = await seedQuietSessions(tessera, flags.sessions, settings)
  const seedSeconds = (performance.now() - seedStarted) / 1000
  const memory = await redisMemory(tessera, quiet.slice(0, 200).map((s) => s.id), flags.sessions)

  const idle = await measureIdleTicks(tessera, flags, writes)
  if (idle.foundDue > 0) throw new Error(`${idle.foundDue} idle ticks found something due: the figures would not be of idle ticks`)
  const real = await measureLateness(tessera, flags, settings)
  return report(flags, facts, settings, { seedSeconds, memory }, idle, real)
}

/** Redis memory the sessions in presence take: the deadline lists, and the presence hashes by a sample. */
async function redisMemory(tessera: Tessera, sample: string[], count: number) {
  const { redis, keys } = tessera.ctx
  const usage = async (key: string) => Number((await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')) ?? 0)
  let lists = 0
  for (const d of keys.deadlineShards) lists += (await usage(d.active)) + (await usage(d.lifetime))
  let hashes = 0
  for (const id of sample) hashes += await usage(keys.sessionPresence(id))
  return { lists, presence: (hashes / Math.max(1, sample.length)) * count }
}

const sleep = (msec: number) => new Promise((r) => setTimeout(r, msec))

function report(
  flags: Flags,
  facts: MachineFacts,
  settings: Settings,
  setup: { seedSeconds: number; memory: { lists: number; presence: number } },
  idle: IdleTicks,
  real: Awaited<ReturnType<typeof measureLateness>>,
) {
  const b = summarize(idle.baseline)
  const t = summarize(idle.tessera)
  const cached = summarize(idle.settingsCached)
  const read = summarize(idle.settingsRead)
  const jobs = summarize(real.idleJobs.map((j) => j.finishedOn - j.processedOn))
  const pickup = summarize(real.idleJobs.map((j) => j.processedOn - j.dueAt))
  const w = idle.writes
  const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`
  const header = ['', 'baseline (bare pipelined ZRANGEBYSCORE)', 'Tessera (IdleSweep.tick)', 'Tessera / baseline']
  const rows = [
    ['sessions in presence (none due)', num(flags.sessions), num(flags.sessions), ''],
    ['idle ticks measured', num(b.count), num(t.count), ''],
    ['p50 ms', ms(b.p50), ms(t.p50), ratio(t.p50, b.p50)],
    ['p90 ms', ms(b.p90), ms(t.p90), ratio(t.p90, b.p90)],
    ['p99 ms', ms(b.p99), ms(t.p99), ratio(t.p99, b.p99)],
    ['max ms', ms(b.max), ms(t.max), ratio(t.max, b.max)],
    ['ticks with the settings cached: n, p50 / p99 ms', '', `${num(cached.count)}: ${ms(cached.p50)} / ${ms(cached.p99)}`, ''],
    ['ticks that re-read the settings: n, p50 / max ms', '', `${num(read.count)}: ${ms(read.p50)} / ${ms(read.max)}`, ''],
    ['PostgreSQL / Redis writes per tick', `${w.baseline.postgres.toFixed(2)} / ${w.baseline.redis.toFixed(2)}`, `${w.tessera.postgres.toFixed(2)} / ${w.tessera.redis.toFixed(2)}`, ''],
  ]
  const jobRows = [
    ['idle-sweep jobs with nothing due', num(jobs.count)],
    ['job run time (four sweeps 250 ms apart, repair pass) p50 / max ms', `${ms(jobs.p50)} / ${ms(jobs.max)}`],
    ['BullMQ: due → taken by the worker p50 / max ms', `${ms(pickup.p50)} / ${ms(pickup.max)}`],
    ['cleanup run at worker start (all deadline lists)', `${(real.cleanupMs / 1000).toFixed(1)} s`],
    ['idle-sweep jobs failed (whole run)', num(real.failed)],
  ]
  const phase = (label: string) => real.phases.find((p) => p.label === label)
  const s = phase('staggered')
  const u = phase('burst')
  const col = (f: (p: Lateness) => string) => [s ? f(s) : 'not run', u ? f(u) : 'not run']
  const lateHeader = ['', `staggered: ${num(flags.due)} over ${flags.spread} s`, `burst: ${num(flags.burst)} at one instant`]
  const lateRows = [
    ['made due (lifetime / idle timeout)', ...col((p) => `${num(p.made)} (${num(p.byKind.lifetime)} / ${num(p.byKind.idle_timeout)})`)],
    ['ended / with the expected reason / before the deadline', ...col((p) => `${num(p.ended)} / ${num(p.ended - p.wrongReason)} / ${num(p.early)}`)],
    ['ended within 1 s of the deadline', ...col((p) => `${num(p.withinSecond)} (${percent(p.withinSecond, p.made)})`)],
    ['deadline → ended_at p50 ms', ...col((p) => ms(p.late.p50))],
    ['p90 ms', ...col((p) => ms(p.late.p90))],
    ['p99 ms', ...col((p) => ms(p.late.p99))],
    ['max ms', ...col((p) => ms(p.late.max))],
    ['of which deadline → start of the job that ended it p50 / max ms', ...col((p) => `${ms(p.waitForTick.p50)} / ${ms(p.waitForTick.max)}`)],
    ['and that tick taken → ended_at p50 / max ms', ...col((p) => `${ms(p.tickToEnded.p50)} / ${ms(p.tickToEnded.max)}`)],
    ['ticks that ended sessions / most in one tick', ...col((p) => `${num(p.ticks.withEndings)} / ${num(p.ticks.maxEndedInOne)}`)],
    ['run time of those ticks p50 / max ms', ...col((p) => `${ms(p.ticks.duration.p50)} / ${ms(p.ticks.duration.max)}`)],
    ["sweep's own lag (tessera_sweep_lag_seconds) max ms", ...col((p) => ms(p.ticks.sweepLagMaxMs))],
    ['ended_at → follow-up finalized p50 / p99 ms (n)', ...col((p) => `${ms(p.finalized.p50)} / ${ms(p.finalized.p99)} (${num(p.finalized.count)})`)],
  ]

  const yes = (ok: boolean) => (ok ? 'met' : '**not met**')
  const scaleNote = flags.sessions < 100_000 ? ` (at ${num(flags.sessions)} sessions; P7 asks 100,000)` : ''
  const allInTime = (p: Lateness | undefined) => (p ? yes(p.ended === p.made && p.early === 0 && p.wrongReason === 0 && p.late.max <= 1000) : 'not run')
  const lateFigure = (p: Lateness | undefined) => (p ? `${num(p.withinSecond)} of ${num(p.made)} within 1 s; max ${ms(p.late.max)} ms` : 'not run')
  const targets = [
    ['P7 idle tick ≤ 20 ms (p99)', `p99 ${ms(t.p99)} ms, max ${ms(t.max)} ms (baseline p99 ${ms(b.p99)} ms)`, yes(t.p99 <= 20) + scaleNote],
    ['P7 every due session ended within 1 s of its deadline (staggered)', lateFigure(s), allInTime(s) + (s ? scaleNote : '')],
    ['P7 every due session ended within 1 s of its deadline (burst)', lateFigure(u), allInTime(u) + (u ? scaleNote : '')],
  ]

  console.log(`\nIdle sweep: ${num(flags.sessions)} sessions in presence, ${num(flags.ticks)} idle ticks ${flags['tick-gap']} ms apart`)
  console.log(textTable(header, rows))
  console.log(`\nThe real sweep through BullMQ (Workers, a sweep job every ${flags['sweep-every'] || SWEEP_EVERY_MS} ms, four sweeps each), ${flags['idle-seconds']} s with nothing due`)
  console.log(textTable(['', 'Tessera'], jobRows))
  console.log(`\nDue sessions ended by the real sweep`)
  console.log(textTable(lateHeader, lateRows))
  console.log(`\n${textTable(['target', 'Tessera', 'verdict'], targets)}`)

  if (flags.write) {
    const cmd = `npx tsx scripts/bench/sweep.ts ${process.argv.slice(2).join(' ')}`.trimEnd()
    const experiment = [
      flags['sweep-every'] > 0 ? ` — experiment: the sweep every ${num(flags['sweep-every'])} ms (Tessera sweeps every ${num(SWEEP_EVERY_MS)} ms)` : '',
      flags['ended-concurrency'] > 0 ? ` — experiment: ${num(flags['ended-concurrency'])} session-ended jobs at once (Tessera runs ${num(SESSION_ENDED_CONCURRENCY)})` : '',
    ].join('')
    writeSection(
      experiment ? 'sweep-experiment' : 'sweep',
      `## Idle sweep at ${num(flags.sessions)} sessions (P7)${experiment}

- **Run:** \`${cmd}\`
- **Machine:** ${factsLine(facts)}, at the end ${loadAverage()}. The load on the machine was not
  controlled (other test runs may have been going on): re-measure on a quiet machine before
  reading much into absolute figures.
- **Sessions:** ${num(flags.sessions)} in presence, one user each, put in place in ${setup.seedSeconds.toFixed(1)} s by bulk SQL
  and pipelined writes of the keys \`Sessions.open\` leaves (presence hash, \`due:active\`,
  \`due:lifetime\`), all with input within the last minute, so none is due. Redis holds about
  ${mib(setup.memory.lists)} for their two deadline lists and ${mib(setup.memory.presence)} for their presence hashes (\`MEMORY USAGE\`).
- **Settings:** the defaults: idle after ${settings.idleAfterSeconds} s, warning ${settings.idleWarningSeconds} s ahead, idle timeout ${settings.idleTimeoutSeconds} s,
  lifetime ${settings.lifetimeSeconds} s.
- **Idle ticks:** \`IdleSweep.tick()\` on Tessera's context, ${num(flags.ticks)} times after ${flags.warmup} not counted,
  ${flags['tick-gap']} ms apart, so that the settings cache (500 ms) expires now and then: the real ticks come
  a second apart, and in a worker where nothing else reads the settings each of them re-reads them.
  Writes are socket writes to PostgreSQL and Redis (about one per round trip).
- **Baseline:** paired with each tick, taking turns to go first: one pipelined round trip of
  the same five \`ZRANGEBYSCORE … WITHSCORES LIMIT 0 ${BATCH}\` reads on the same lists over the same connection.
- **Real sweep:** \`Workers\` as \`ROLE=all\` runs them (a sweep job every ${num(flags['sweep-every'] || SWEEP_EVERY_MS)} ms through a BullMQ
  job scheduler, sweeping four times 250 ms apart, session-ended jobs, write-behind, cleanup) in the benchmark's process, after the
  cleanup run at start had finished. Then ${num(flags.due)} more sessions came due at deadlines spread evenly over
  ${flags.spread} s, and then ${num(flags.burst)} at one random instant; half by lifetime, half by idle timeout (those go
  idle and are warned first, as quiet sessions are). Each is timed from its deadline to
  \`sessions.ended_at\` (PostgreSQL's \`now()\` when the ending committed; one machine, one clock).

${markdownTable(header, rows)}

${markdownTable(['the real sweep, nothing due', 'Tessera'], jobRows)}

${markdownTable(lateHeader, lateRows)}

${markdownTable(['target', 'Tessera', 'verdict'], targets)}
`,
    )
  }
  return {
    bench: `sweep (${num(flags.sessions)} sessions${flags['sweep-every'] > 0 ? `, every ${flags['sweep-every']} ms` : ''})`,
    rows: [
      { figure: 'P7 idle sweep tick p99 ms', target: '≤ 20', baseline: ms(b.p99), peer: '—', tessera: ms(t.p99), ratio: ratio(t.p99, b.p99), verdict: targets[0]![2]! },
      { figure: 'P7 deadline → ended max ms (staggered)', target: '≤ 1,000', baseline: '—', peer: '—', tessera: s ? ms(s.late.max) : 'not run', ratio: '', verdict: targets[1]![2]! },
      { figure: 'P7 deadline → ended max ms (burst)', target: '≤ 1,000', baseline: '—', peer: '—', tessera: u ? ms(u.late.max) : 'not run', ratio: '', verdict: targets[2]![2]! },
    ],
  }
}

void runBenchmark(NAME, main)
