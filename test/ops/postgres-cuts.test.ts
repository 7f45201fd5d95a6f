// PostgreSQL connections cut under load (quality.md R3): the pool of openDatabase() runs
// transactions of every shape the service has (a plain one, one whose body waits on
// something else between its statements, one whose body catches a failed statement and
// carries on) while their backends are killed (pg_terminate_backend), also while a COMMIT is
// on the wire, and then the server itself is killed. postgres.js (3.4.9) would crash the
// process from a setImmediate when a statement or the COMMIT is written to a connection
// already closed; here no uncaught error may reach the process, every transaction is
// wholly committed or not at all, and the pool answers again once the server is back.
import { setTimeout as sleep } from 'node:timers/promises'
import postgres from 'postgres'
import t from 'tap'
import { openDatabase } from '../../src/infra/db.js'
import { privatePostgres } from '../helpers/private-postgres.js'
import { until } from '../helpers/wait.js'

const WORKERS = 12

t.test('connections killed during transactions and COMMITs never crash the process; transactions are all or nothing', async (t) => {
  const pg = await privatePostgres(t)
  const admin = postgres(pg.url, {
    max: 2,
    onnotice: () => {},
    connect_timeout: 5,
  })
  t.teardown(() => admin.end({ timeout: 1 }).catch(() => {}))
  await admin`create table pairs (id int not null, part int not null, primary key (id, part))`

  // What would crash the process: tap fails the test on it too, this makes it explicit.
  const crashes: string[] = []
  const onCrash = (err: unknown) => crashes.push(String((err as Error)?.stack ?? err).slice(0, 500))
  process.on('uncaughtException', onCrash)
  process.on('unhandledRejection', onCrash)
  t.teardown(() => {
    process.removeListener('uncaughtException', onCrash)
    process.removeListener('unhandledRejection', onCrash)
  })

  const database = await openDatabase(pg.url, 8)
  t.teardown(() => database.close())
  const { sql } = database

  let next = 0
  const committed = new Set<number>()
  const outcomes = new Map<string, number>()
  const tally = (what: string) => outcomes.set(what, (outcomes.get(what) ?? 0) + 1)
  // Each transaction writes two rows of one id: both or neither may exist afterwards.
  const shapes: ((id: number) => Promise<unknown>)[] = [
    (id) =>
      sql.begin(async (tx) => {
        await tx`insert into pairs values (${id}, 1)`
        await tx`insert into pairs values (${id}, 2)`
      }),
    (id) =>
      sql.begin(async (tx) => {
        await tx`insert into pairs values (${id}, 1)`
        await sleep(Math.random() * 3) // a Redis call, say: the connection may die meanwhile
        await tx`insert into pairs values (${id}, 2)`
        await sleep(Math.random() * 3) // and again before the COMMIT is written
      }),
    (id) =>
      sql.begin(async (tx) => {
        await tx`insert into pairs values (${id}, 1)`
        await tx`insert into pairs values (${id}, 2)`
        // A body that treats a failed statement as an answer and carries on (an upsert that
        // may conflict, say); after a cut the next statement or the COMMIT meets a closed connection.
        await tx`select pg_sleep(0.002)`.catch(() => null)
        await tx`select 1`.catch(() => null)
      }),
    (id) =>
      database.db.transaction(async (tx) => {
        await tx.execute(`insert into pairs values (${id}, 1)`)
        await tx.execute(`insert into pairs values (${id}, 2)`)
      }),
  ]
  let running = true
  const worker = async () => {
    while (running) {
      const id = ++next
      const shape = shapes[id % shapes.length]!
      try {
        await shape(id)
        committed.add(id)
        tally('committed')
      } catch (err) {
        const e = err as { code?: string; cause?: { code?: string } }
        tally(`failed ${e.code ?? e.cause?.code ?? 'other'}`)
        if (!pg.running()) await sleep(20)
      }
    }
  }
  const workers = Array.from({ length: WORKERS }, worker)

  // Phase 1: the pool's backends killed over and over, whatever they are doing (a COMMIT too).
  let killed = 0
  let inCommit = 0
  const endAt = Date.now() + 8000
  while (Date.now() < endAt) {
    const rows = await admin`select pg_terminate_backend(pid) as ok, state = 'active' and query ilike 'commit%' as commit from pg_stat_activity
      where datname = 'postgres' and pid <> pg_backend_pid() and application_name like 'tessera-%'
      and (state = 'active' and query ilike 'commit%' or random() < 0.3)`
    killed += rows.filter((r) => r.ok).length
    inCommit += rows.filter((r) => r.ok && r.commit).length
    await sleep(Math.random() * 15)
  }
  t.ok(killed > 20, `${killed} backends killed under load (${inCommit} of them while running a COMMIT)`)
  const committedBeforeServerKill = committed.size
  t.ok(committedBeforeServerKill > 50, `${committedBeforeServerKill} transactions committed meanwhile`)

  // Phase 2: the server killed under load (as a crash: recovery at the next start), then started again.
  await admin.end({ timeout: 1 }).catch(() => {})
  await pg.stop('immediate')
  await sleep(1500)
  await pg.start()
  await until('transactions to commit again', () => committed.size > committedBeforeServerKill + 50, 60_000)
  running = false
  await Promise.all(workers)
  t.comment([...outcomes.entries()].map(([k, v]) => `${k}: ${v}`).join(', '))

  t.same(crashes, [], 'no uncaught exception or unhandled rejection reached the process')
  const check = postgres(pg.url, { max: 1, onnotice: () => {} })
  t.teardown(() => check.end({ timeout: 1 }).catch(() => {}))
  const rows = await check`select id, count(*)::int as parts from pairs group by id`
  const half = rows.filter((r) => r.parts !== 2).map((r) => r.id)
  t.same(half, [], 'no transaction half-written')
  const present = new Set(rows.map((r) => r.id as number))
  const lost = [...committed].filter((id) => !present.has(id))
  t.same(lost, [], 'every transaction that resolved is in the table')
  const [{ n }] = (await sql`select count(*)::int as n from pairs`) as unknown as [{ n: number }]
  t.equal(n, rows.length * 2, 'the pool answers after the server came back')
})
