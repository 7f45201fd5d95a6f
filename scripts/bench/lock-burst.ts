// Lock release in a burst of endings (issue 18; realtime.md wants a session's locks released
// within 1 s of its end).
//
// N sessions (default 1,000), each holding one lock, come due by idle timeout at one random
// instant. Real Workers (src/jobs/workers.ts, as ROLE=all runs them) sweep once a second; one
// tick ends the whole burst in one call. A waiter, a live session of its own, listens on the
// broadcast channel as every tab does and takes each lock as soon as it hears it released
// (Locks.acquire, as POST /api/locks does). Each lock is timed from its session's `ended_at`
// (PostgreSQL's clock, as is `Date.now()` here: one machine) to the moment the waiter holds it.
//
// Baseline, in the same run: the same burst with its locks left to the session-ended jobs, as
// every ending did before endings released their locks themselves: the N sessions are ended
// in one statement that leaves their locks, their jobs queued as an ending queues them.
//
//   npx tsx scripts/bench/lock-burst.ts [--sessions 1000]
import { randomUUID } from 'node:crypto'
import type { Tessera } from '../../src/app.js'
import { Workers } from '../../src/jobs/workers.js'
import type { LockOwner } from '../../src/locks/service.js'
import type { Settings } from '../../src/settings/schemas.js'
import { factsLine, machineFacts, onCleanup, openBenchEnv, parseFlags, runBenchmark } from './harness.js'
import { progress } from './load-process.js'
import { writeSection } from './report.js'
import { seedPresence } from './seed.js'
import { markdownTable, ms, num, ratio, type Summary, summarize } from './stats.js'

const NAME = 'lock-burst'

const defaults = { sessions: 1000, lead: 5, write: true }
const help: Record<keyof typeof defaults, string> = {
  sessions: 'sessions in the burst, one lock each (the sweep ends up to 1,000 in one call)',
  lead: 'seconds from seeding to the burst’s deadline',
  write: 'refresh this section of docs/benchmarks.md (--write=false to skip)',
}
type Flags = typeof defaults

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

interface Phase {
  label: string
  sessions: number
  /** ended_at → the lock's row is gone from PostgreSQL (polled every 20 ms): any acquirer would get it. */
  released: Summary
  /** ended_at → the waiter holds the lock. */
  free: Summary
  /** ended_at → the waiter hears `locks.released`. */
  heard: Summary
  /** Locks the waiter did not get within the wait. */
  missing: number
}

/** A waiter that takes each resource as soon as the broadcast says it is free. */
async function waiter(tessera: Tessera, owner: LockOwner) {
  const { ctx } = tessera
  const heard = new Map<string, number>()
  const held = new Map<string, number>()
  const sub = ctx.redis.duplicate()
  await sub.connect()
  await sub.subscribe(ctx.keys.broadcastChannel)
  const take = async (resource: string) => {
    for (let attempt = 0; attempt < 50; attempt++) {
      try {
        await ctx.locks.acquire(owner, resource)
        held.set(resource, Date.now())
        return
      } catch {
        await sleep(20)
      }
    }
  }
  sub.on('message', (_channel, message: string) => {
    if (!message.includes('"locks.released"')) return
    const frame = JSON.parse(message) as { type?: string; resources?: string[] }
    if (frame.type !== 'locks.released') return
    const now = Date.now()
    for (const r of frame.resources ?? []) {
      heard.set(r, now)
      void take(r)
    }
  })
  return { heard, held, owner: owner.sessionId, close: () => sub.quit() }
}

async function seedWithLocks(tessera: Tessera, label: string, count: number, times: (i: number) => { expiresAt: number; lastActivity: number }) {
  const { sql } = tessera.ctx.database
  const seeded = await seedPresence(NAME, tessera, count, { usernamePrefix: `bench-${label}-${randomUUID().slice(0, 6)}-`, times })
  const resources = seeded.map((_, i) => `${label}:${i}`)
  await sql`insert into locks (resource, session_id, user_id)
    select * from unnest(${resources}::text[], ${seeded.map((s) => s.id)}::uuid[], ${seeded.map((s) => s.userId)}::int[])`
  return { ids: seeded.map((s) => s.id), resources }
}

async function measure(tessera: Tessera, label: string, ids: string[], resources: string[], w: Awaited<ReturnType<typeof waiter>>): Promise<Phase> {
  const { sql } = tessera.ctx.database
  const deadline = Date.now() + 60_000
  const prefix = `${resources[0]!.split(':')[0]}:%`
  const gone = new Map<string, number>()
  const mine = new Set(resources)
  // The waiter takes a lock as soon as it is gone: a row of another session is a free one.
  const left = new Set(resources)
  while (left.size > 0 && Date.now() < deadline) {
    const rows = await sql`select resource from locks where resource like ${prefix} and session_id <> ${w.owner}`
    const now = Date.now()
    const still = new Set(rows.map((r) => r.resource as string))
    for (const r of [...left]) if (!still.has(r) && mine.has(r)) {
      gone.set(r, now)
      left.delete(r)
    }
    await sleep(20)
  }
  while (resources.some((r) => !w.held.has(r)) && Date.now() < deadline) await sleep(100)
  const rows = await sql`select id, ended_at from sessions where id = any(${ids}::uuid[]) and status = 'ended'`
  const free: number[] = []
  const heard: number[] = []
  const released: number[] = []
  const endedAt = new Map<string, number>()
  for (const r of rows) endedAt.set(r.id as string, (r.ended_at as Date).getTime())
  for (const [i, id] of ids.entries()) {
    const ended = endedAt.get(id)
    const at = w.held.get(resources[i]!)
    if (ended === undefined || at === undefined) continue
    free.push(at - ended)
    const h = w.heard.get(resources[i]!)
    if (h !== undefined) heard.push(h - ended)
    const g = gone.get(resources[i]!)
    if (g !== undefined) released.push(g - ended)
  }
  return { label, sessions: ids.length, released: summarize(released), free: summarize(free), heard: summarize(heard), missing: ids.length - free.length }
}

async function main() {
  const flags = parseFlags(NAME, defaults, help) as Flags
  const env = await openBenchEnv(NAME, { LOGIN_RATE_LIMIT: '100000/min' })
  const facts = await machineFacts(env.resources)
  progress(NAME, `${facts.nproc} cores, Node ${facts.node}, load average ${facts.loadAtStart}`)
  const { tessera } = await env.node()
  const { ctx } = tessera
  const settings: Settings = await ctx.settings.get()
  const now = Date.now()
  const far = { expiresAt: now + settings.lifetimeSeconds * 1000, lastActivity: now }

  // The waiter: a live session nowhere near a deadline.
  const [me] = await seedPresence(NAME, tessera, 1, { usernamePrefix: 'bench-waiter-', times: () => far })
  const [u] = await ctx.database.sql`select username from users where id = ${me!.userId}`
  const w = await waiter(tessera, { sessionId: me!.id, userId: me!.userId, username: u!.username as string })
  onCleanup(() => w.close())

  const workers = new Workers(ctx, { locks: ctx.locks, log: tessera.app.log })
  onCleanup(() => workers.close())
  await workers.start()
  progress(NAME, 'workers started; letting the cleanup run at start finish')
  await sleep(3000)

  // Tessera: the sweep ends the burst by idle timeout, its ending frees the locks.
  const instant = Date.now() + flags.lead * 1000 + Math.floor(Math.random() * 1000)
  const burst = await seedWithLocks(tessera, 'sweep', flags.sessions, () => ({ expiresAt: instant + 86_400_000, lastActivity: instant - settings.idleTimeoutSeconds * 1000 }))
  if (Date.now() > instant) throw new Error('seeding took longer than --lead')
  progress(NAME, `${flags.sessions} sessions with a lock each, due at ${new Date(instant).toISOString().slice(11, 23)}`)
  const tesseraPhase = await measure(tessera, 'the ending frees the locks (Tessera)', burst.ids, burst.resources, w)

  // Baseline: the same burst, ended in one statement that leaves the locks to the jobs.
  const before = await seedWithLocks(tessera, 'jobs', flags.sessions, () => far)
  const { sql } = ctx.database
  progress(NAME, 'the same burst, its locks left to the session-ended jobs')
  const ended = await sql`update sessions set status = 'ended', end_reason = 'idle_timeout', ended_at = now(), version = version + 1
    where id = any(${before.ids}::uuid[]) returning id, user_id`
  await ctx.queues.enqueueEnded(ended.map((r) => ({ id: r.id as string, userId: r.user_id as number, reason: 'idle_timeout' as const })))
  const jobsPhase = await measure(tessera, 'the session-ended jobs free them (before)', before.ids, before.resources, w)
  await workers.close()
  return report(flags, facts, [tesseraPhase, jobsPhase])
}

function report(flags: Flags, facts: Awaited<ReturnType<typeof machineFacts>>, phases: Phase[]) {
  const [t, b] = phases as [Phase, Phase]
  const header = ['', ...phases.map((p) => p.label)]
  const rows = [
    ['sessions ending at once, one lock each', ...phases.map((p) => num(p.sessions))],
    ['ended_at → lock free in PostgreSQL p50 / p99 / max ms', ...phases.map((p) => `${ms(p.released.p50)} / ${ms(p.released.p99)} / ${ms(p.released.max)}`)],
    ['ended_at → `locks.released` heard p50 / p99 ms', ...phases.map((p) => `${ms(p.heard.p50)} / ${ms(p.heard.p99)}`)],
    ['ended_at → waiter holds the lock p50 / p99 / max ms', ...phases.map((p) => `${ms(p.free.p50)} / ${ms(p.free.p99)} / ${ms(p.free.max)}`)],
    ['locks not taken within 60 s', ...phases.map((p) => num(p.missing))],
  ]
  const verdict = t.missing === 0 && t.released.p99 <= 1000 ? 'met' : 'not met'
  const heardVerdict = t.heard.p99 <= 1000 ? 'met' : 'not met'
  const text = markdownTable(header, rows)
  console.log(`\n${text}\n\nlock free within 1 s p99 (burst of ${num(flags.sessions)}): ${ms(t.released.p99)} ms, ${verdict}; before: ${ms(b.released.p99)} ms (${ratio(t.released.p99, b.released.p99)})`)
  if (flags.write) {
    writeSection(
      NAME,
      `## Lock release in a burst of endings (\`scripts/bench/lock-burst.ts\`)

${factsLine(facts)}

${num(flags.sessions)} sessions, each holding one lock, come due by idle timeout at one instant; real \`Workers\` sweep once
a second and one tick ends them all in one call. A waiter session hears \`locks.released\` on the broadcast channel
as a tab does and takes each lock at once (\`Locks.acquire\`). Timed from each session's \`ended_at\` to the moment
its lock's row is gone from PostgreSQL (polled every 20 ms: from then on any \`POST /api/locks\` gets it), to the
announcement, and to the moment the waiter holds it (its 1,000 acquisitions at once take their own time).
Baseline, same run: the same burst ended in one statement that leaves the locks to the session-ended jobs, as
every ending did before it released its locks itself.

${text}

| target | Tessera | verdict |
| --- | --- | --- |
| the locks of a burst of ${num(flags.sessions)} endings free within 1 s of \`ended_at\`, p99 | ${ms(t.released.p99)} ms | ${verdict} |
| … and announced to waiting tabs within 1 s, p99 | ${ms(t.heard.p99)} ms | ${heardVerdict} |
`,
    )
  }
  return {
    bench: `lock-burst (${num(flags.sessions)} endings)`,
    rows: [
      {
        figure: 'locks free after a burst of endings p99 ms (baseline: the old path)',
        target: '≤ 1,000',
        baseline: ms(b.released.p99),
        peer: '—',
        tessera: ms(t.released.p99),
        ratio: ratio(t.released.p99, b.released.p99),
        verdict,
      },
    ],
  }
}

void runBenchmark(NAME, main)
