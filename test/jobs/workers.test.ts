// The BullMQ workers (issue 4): the sweep runs once per tick however many workers run,
// each ending is processed once and releases its locks, last activity is written behind,
// deadlines missed while no worker ran are caught up, and the cleanup applies retention.
import { randomUUID } from 'node:crypto'
import t, { type Test as Tap } from 'tap'
import type { Tessera } from '../../src/app.js'
import type { QueueName } from '../../src/infra/queues.js'
import { build, signedIn, startWorkers, type TestApp } from '../helpers/app.js'
import { spawnTessera } from '../helpers/process.js'
import { listen, openTab } from '../helpers/ws.js'
import { sample, sleep, until } from '../helpers/wait.js'

/** tessera_jobs_total{queue, result} as one node's /metrics shows it. */
async function jobsTotal(node: Pick<Tessera, 'ctx'>, queue: QueueName, result: 'completed' | 'failed'): Promise<number> {
  const text = await node.ctx.metrics.registry.getSingleMetricAsString('tessera_jobs_total')
  const line = text.split('\n').find((l) => l.startsWith(`tessera_jobs_total{queue="${queue}",result="${result}"}`))
  return line ? Number(line.split(' ').at(-1)) : 0
}

const lockRows = (app: TestApp) => app.ctx.database.sql`select resource, session_id from locks order by resource`
const releaseAudit = (app: TestApp, sessionId: string) =>
  app.ctx.database.sql`select data from audit_events where type = 'locks.released' and session_id = ${sessionId} order by id`

t.test('with two processes running workers, the sweep runs once per tick and each ending is processed once', async (t) => {
  // This process runs the workers as ROLE=all does; a second, ROLE=worker, is spawned.
  const app = await build(t, {}, { workers: true })
  const other = await spawnTessera(t, app, { ROLE: 'worker' })
  t.teardown(() => other.stop())
  const inOther = async (queue: QueueName, result: 'completed' | 'failed') =>
    sample(await (await fetch(`${other.url}/metrics`)).text(), 'tessera_jobs_total', { queue, result })
  const sumOver = async (queue: QueueName, result: 'completed' | 'failed') => (await jobsTotal(app, queue, result)) + (await inOther(queue, result))

  t.test('the idle sweep: one job per tick, not one per worker', async (t) => {
    const completedIds = async () => (await app.ctx.queues.all.idleSweep.getJobs(['completed'], 0, 100)).map((j) => j.id!)
    const before = new Set(await completedIds())
    const ran = await sumOver('idle-sweep', 'completed')
    await until('three more ticks', async () => (await sumOver('idle-sweep', 'completed')) - ran >= 3)
    const ticks = (await completedIds()).filter((id) => !before.has(id))
    t.ok(ticks.length >= 3, `the sweep ran (${ticks.length} ticks)`)
    // A scheduler job's id is repeat:<scheduler>:<tick time>: one scheduler, one job per tick time.
    t.same([...new Set(ticks.map((id) => id.split(':').slice(0, -1).join(':')))], ['repeat:idle-sweep'], 'one schedule, not one per worker')
    const times = ticks.map((id) => id.split(':').at(-1))
    t.equal(new Set(times).size, times.length, 'no tick time was run twice')
    t.equal(await sumOver('idle-sweep', 'failed'), 0, 'no tick failed')
    t.comment(`ticks in this process: ${await jobsTotal(app, 'idle-sweep', 'completed')}, in the other: ${await inOther('idle-sweep', 'completed')}`)
  })

  t.test('ten endings: ten session-ended jobs in total, each releasing its session’s locks once', async (t) => {
    const names = Array.from({ length: 10 }, (_, i) => `user${i}`)
    const clients = await signedIn(app, ...names)
    for (const [i, c] of clients.entries()) t.equal((await c.post('/api/locks', { resource: `doc:${i}` })).statusCode, 201, `${names[i]} takes doc:${i}`)
    const before = await sumOver('session-ended', 'completed')
    for (const [i, c] of clients.entries()) t.equal((await c.post('/api/auth/logout')).statusCode, 204, `${names[i]} signs out`)

    await until('ten completed session-ended jobs', async () => (await sumOver('session-ended', 'completed')) - before >= 10)
    await until('every lock released', async () => (await lockRows(app)).length === 0)
    // Time for a duplicate to show up, had there been one.
    await sleep(1500)
    t.equal((await sumOver('session-ended', 'completed')) - before, 10, 'exactly ten jobs completed, across both processes')
    t.equal(await sumOver('session-ended', 'failed'), 0, 'none failed')
    t.same(await lockRows(app), [], 'the locks table is empty')
    for (const [i, c] of clients.entries()) {
      t.same(
        (await releaseAudit(app, c.sessionId!)).map((r) => r.data),
        [{ resources: [`doc:${i}`], reason: 'logout' }],
        `${names[i]}: released once`,
      )
    }
  })
})

t.test('the owner’s logout, idle expiry and a force end each release its locks and tell other users’ tabs', async (t) => {
  const app = await build(t, {}, { workers: true })
  await app.user('ada')
  const [bob] = await signedIn(app, 'bob')
  const address = await listen(app)
  const { tab } = await openTab(address, bob!.sid!, { tabId: 'bob-1' })

  async function adaWithLock(t: Tap, resource: string): Promise<string> {
    const ada = await app.client().signIn('ada')
    t.equal((await ada.post('/api/locks', { resource })).statusCode, 201, `ada takes ${resource}`)
    return ada.sessionId!
  }
  async function releasedFor(t: Tap, sessionId: string, resource: string, reason: string, ms = 10_000) {
    const m = await tab.next((m) => m.type === 'locks.released' && m.sessionId === sessionId, ms)
    t.same(m, { type: 'locks.released', resources: [resource], sessionId, reason, at: m.at }, `bob’s tab hears of ${resource} (${reason})`)
    t.same(
      (await lockRows(app)).filter((r) => r.session_id === sessionId),
      [],
      'the session holds no lock',
    )
    t.same(
      (await releaseAudit(app, sessionId)).map((r) => r.data),
      [{ resources: [resource], reason }],
      'one release, audited',
    )
  }

  t.test('logout', async (t) => {
    const ada = await app.client().signIn('ada')
    t.equal((await ada.post('/api/locks', { resource: 'doc:logout' })).statusCode, 201, 'ada takes doc:logout')
    t.equal((await ada.post('/api/auth/logout')).statusCode, 204, 'ada signs out')
    await releasedFor(t, ada.sessionId!, 'doc:logout', 'logout')
  })

  t.test('an administrator’s force end', async (t) => {
    const sessionId = await adaWithLock(t, 'doc:admin')
    t.equal((await app.ctx.sessions.end([sessionId], 'admin', { actorUserId: 1, note: 'x' })).length, 1, 'an admin ends ada’s session')
    await releasedFor(t, sessionId, 'doc:admin', 'admin')
  })

  t.test('idle expiry', async (t) => {
    const sessionId = await adaWithLock(t, 'doc:idle')
    await app.ctx.settings.update({ idleAfterSeconds: 1, idleTimeoutSeconds: 5, idleWarningSeconds: 0 }, 1)
    // Bob keeps typing, so that only ada's session goes quiet.
    const typing = setInterval(() => tab.send({ type: 'activity', at: Date.now() }), 300)
    t.teardown(() => clearInterval(typing))
    await releasedFor(t, sessionId, 'doc:idle', 'idle_timeout', 15_000)
    const [row] = await app.ctx.database.sql`select status, end_reason from sessions where id = ${sessionId}`
    t.match(row, { status: 'ended', end_reason: 'idle_timeout' }, 'ada’s session expired')
  })
})

t.test('last activity is written behind to PostgreSQL', async (t) => {
  const lastActivity = async (app: TestApp, id: string) =>
    ((await app.ctx.database.sql`select last_activity from sessions where id = ${id}`)[0]!.last_activity as Date).getTime()

  t.test('by the activity flush every ACTIVITY_FLUSH_INTERVAL_SECONDS', async (t) => {
    const app = await build(t, { ACTIVITY_FLUSH_INTERVAL_SECONDS: '1' }, { workers: true })
    const [ada] = await signedIn(app, 'ada')
    const { tab } = await openTab(await listen(app), ada!.sid!, { tabId: 'A' })
    await sleep(1100)
    const at = Date.now()
    tab.send({ type: 'activity', at })
    const flushed = await until('PostgreSQL to catch up', async () => (await lastActivity(app, ada!.sessionId!)) === at, 10_000)
    t.ok(flushed, 'sessions.last_activity is the input time')
  })

  t.test('and by the session-ended job, with the final value', async (t) => {
    // The flush runs once when the workers start and then not for an hour: only the job can write it.
    const app = await build(t, { ACTIVITY_FLUSH_INTERVAL_SECONDS: '3600' }, { workers: true })
    const [ada] = await signedIn(app, 'ada')
    const id = ada!.sessionId!
    const { tab } = await openTab(await listen(app), ada!.sid!, { tabId: 'A' })
    await sleep(1100)
    const at = Date.now()
    tab.send({ type: 'activity', at })
    await until('Redis to record the input', async () => (await app.ctx.store.hotLastActivity(id)) === at, 5000)
    t.ok((await lastActivity(app, id)) < at, 'PostgreSQL does not have it yet')
    await app.ctx.sessions.end([id], 'admin', { actorUserId: 1 })
    await until('the session-ended job', async () => (await (await app.ctx.queues.all.sessionEnded.getJob(`ended-${id}`))?.getState()) === 'completed')
    t.equal(await lastActivity(app, id), at, 'the job wrote the final last activity')
  })
})

t.test('sessions that passed their deadline while no worker ran are ended by the sweep or the cleanup, with the right reason', async (t) => {
  const app = await build(t, { SESSION_CLEANUP_INTERVAL_SECONDS: '1' })
  const [idle, old, lost] = await signedIn(app, 'ada', 'bob', 'cid')
  const { sql } = app.ctx.database
  const { keys } = app.ctx
  const redis = app.resources.redis

  // ada: quiet for three hours (the idle timeout is two), in PostgreSQL and in Redis.
  const quietSince = Date.now() - 3 * 3600_000
  await sql`update sessions set last_activity = ${new Date(quietSince)} where id = ${idle!.sessionId!}`
  await redis.hset(keys.sessionPresence(idle!.sessionId!), 'lastActivity', quietSince)
  await redis.zadd(keys.deadlines(idle!.sessionId!).active, quietSince, idle!.sessionId!)
  // bob: past the end of its lifetime.
  const over = new Date(Date.now() - 60_000)
  await sql`update sessions set expires_at = ${over} where id = ${old!.sessionId!}`
  await redis.zadd(keys.deadlines(old!.sessionId!).lifetime, over.getTime(), old!.sessionId!)
  // cid: past its lifetime, and Redis has lost everything about it.
  const lostId = lost!.sessionId!
  await sql`update sessions set expires_at = ${over} where id = ${lostId}`
  await redis.unlink(keys.sessionPresence(lostId), keys.sessionTabs(lostId))
  for (const key of keys.deadlines(lostId).lists) await redis.zrem(key, lostId)
  await redis.srem(keys.deadlines(lostId).dirty, lostId)
  // Only this session's entries are lost: the lists count as seeded (else the sweep job would
  // first put every active session back on them, cid included: test/jobs/redis-restart.test.ts).
  await redis.set(keys.dueSeeded, '1', 'PX', 60_000)

  const statusOf = async (id: string) => (await sql`select status, end_reason from sessions where id = ${id}`)[0]
  t.match(await statusOf(idle!.sessionId!), { status: 'active' }, 'nothing ends them while no worker runs')

  // Both jobs run as soon as workers start, and the cleanup would end all three first.
  // Holding it back until the sweep has had its ticks shows what each of them catches.
  const cleanup = app.ctx.queues.all.cleanup
  await cleanup.pause()
  const workers = await startWorkers(app)
  t.teardown(() => workers.close())
  const ended = async (ids: string[]) =>
    (await sql`select count(*)::int as n from sessions where id = any(${ids}::uuid[]) and status = 'ended'`)[0]!.n === ids.length
  await until('the sweep to end the two on its lists', () => ended([idle!.sessionId!, old!.sessionId!]))
  await sleep(1500)
  t.match(await statusOf(lostId), { status: 'active' }, 'the sweep cannot see the session Redis forgot')
  await cleanup.resume()
  await until('the cleanup to end the third', () => ended([lostId]))
  t.match(await statusOf(idle!.sessionId!), { status: 'ended', end_reason: 'idle_timeout' }, 'the quiet one: idle_timeout')
  t.match(await statusOf(old!.sessionId!), { status: 'ended', end_reason: 'lifetime' }, 'the old one: lifetime')
  t.match(await statusOf(lostId), { status: 'ended', end_reason: 'lifetime' }, 'the one Redis forgot: lifetime')

  // Who ended what, from the jobs' results.
  const expiredBy = async (queue: 'idleSweep' | 'cleanup') =>
    (await app.ctx.queues.all[queue].getJobs(['completed'], 0, 1000)).reduce((n, j) => n + ((j.returnvalue as { expired?: number } | null)?.expired ?? 0), 0)
  // A job's work commits before BullMQ records it completed: wait for the record.
  const recorded = async (): Promise<[number, number]> => [await expiredBy('idleSweep'), await expiredBy('cleanup')]
  const [bySweep, byCleanup] = await until('the jobs to be recorded', async () => {
    const counts = await recorded()
    return counts[0] + counts[1] >= 3 && counts
  }).catch(recorded)
  t.equal(bySweep + byCleanup, 3, `each ended once (sweep ${bySweep}, cleanup ${byCleanup})`)
  t.equal(bySweep, 2, 'the sweep ended the two on its deadline lists')
  t.equal(byCleanup, 1, 'the cleanup ended the one on no list')
  t.ok((await app.ctx.metrics.sweepLag.get()).values[0]!.value >= 60, 'tessera_sweep_lag_seconds shows how late the expiry ran (a minute at least)')
})

t.test('the cleanup deletes old audit events and login history in batches, and orphaned deadline-list members', async (t) => {
  const app = await build(t, { SESSION_CLEANUP_INTERVAL_SECONDS: '1', SESSION_CLEANUP_BATCH_SIZE: '2', AUDIT_RETENTION_DAYS: '90', LOGIN_HISTORY_RETENTION_DAYS: '180' }, { workers: true })
  const [ada] = await signedIn(app, 'ada')
  const { sql } = app.ctx.database
  const { keys } = app.ctx
  const redis = app.resources.redis
  const orphan = randomUUID()
  await redis.zadd(keys.deadlines(orphan).active, Date.now(), orphan)
  // One statement each, so that one cleanup run sees all five old rows of a table.
  await sql`insert into audit_events (type, at)
    select 'test.old', now() - interval '100 days' from generate_series(1, 5)
    union all select 'test.young', now() - interval '80 days' from generate_series(1, 2)`
  await sql`insert into login_attempts (username, success, reason, at)
    select 'old', false, 'bad_password', now() - interval '200 days' from generate_series(1, 5)
    union all select 'young', false, 'bad_password', now() - interval '100 days' from generate_series(1, 2)`

  const count = async (table: 'audit_events' | 'login_attempts', column: 'type' | 'username', value: string) =>
    (await sql`select count(*)::int as n from ${sql(table)} where ${sql(column)} = ${value}`)[0]!.n as number
  await until('the old rows to go', async () => (await count('audit_events', 'type', 'test.old')) === 0 && (await count('login_attempts', 'username', 'old')) === 0)
  t.equal(await count('audit_events', 'type', 'test.young'), 2, 'audit events within AUDIT_RETENTION_DAYS stay')
  t.equal(await count('login_attempts', 'username', 'young'), 2, 'login history within LOGIN_HISTORY_RETENTION_DAYS stays')
  t.ok((await sql`select count(*)::int as n from audit_events where at > now() - interval '1 hour'`)[0]!.n > 0, 'today’s audit events stay')
  t.ok((await count('login_attempts', 'username', 'ada')) > 0, 'today’s login history stays')

  // The run's work commits before BullMQ records it completed: wait for the record.
  const completedRuns = async () =>
    (await app.ctx.queues.all.cleanup.getJobs(['completed'], 0, 1000)).map((j) => j.returnvalue as { auditDeleted: number; loginHistoryDeleted: number })
  const results = await until('the run to be recorded', async () => {
    const runs = await completedRuns()
    return runs.some((r) => r.auditDeleted > 0) && runs.some((r) => r.loginHistoryDeleted > 0) && runs
  }).catch(completedRuns)
  t.ok(
    results.some((r) => r.auditDeleted === 5),
    'one run deleted all five old audit events, in batches of two',
  )
  t.ok(
    results.some((r) => r.loginHistoryDeleted === 5),
    'and all five old login attempts',
  )

  await until('the orphan to go', async () => (await redis.zscore(keys.deadlines(orphan).active, orphan)) === null)
  t.pass('a deadline-list member without a live session is removed')
  t.not(await redis.zscore(keys.deadlines(ada!.sessionId!).active, ada!.sessionId!), null, 'a live session stays on its list')
})
