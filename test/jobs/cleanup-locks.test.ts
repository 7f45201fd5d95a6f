// The cleanup (issue 4): it releases the locks of endings whose job never ran, in batches
// until one comes back short, each release announced once even when a session-ended job
// overlaps it; and it ends the sessions it finds past a deadline by the deadline that
// passed first, their locks released with the ending. An ending releases its session's locks
// itself (issue 18); the locks left behind here are those it cannot see: taken while it
// waited (SessionStore.markEnded), or of an ending committed before that change.
import t from 'tap'
import { type CleanupDeps, runCleanup } from '../../src/jobs/cleanup.js'
import { processSessionEnded } from '../../src/jobs/session-ended.js'
import { build, startWorkers, type TestApp } from '../helpers/app.js'
import { listen, openTab } from '../helpers/ws.js'
import { sleep, until } from '../helpers/wait.js'

/** Ends sessions in PostgreSQL as an ending that left their locks behind would have. */
async function endLeavingLocks(app: TestApp, ids: string[], reason: string) {
  const { sql } = app.ctx.database
  await sql`update sessions set status = 'ended', end_reason = ${reason}, ended_at = now(), version = version + 1 where id = any(${ids}::uuid[])`
}

function cleanupDeps(app: TestApp, batchSize = 10): CleanupDeps {
  const { ctx } = app
  return { ...ctx, batchSize, retention: ctx.config.retention }
}

t.test('cleanup releases and announces locks of sessions whose session-ended job never ran', async (t) => {
  const app = await build(t)
  await app.user('ada')
  await app.user('bob')
  const ada = await app.client().signIn('ada')
  const fresh = await app.client().signIn('ada')
  const bob = await app.client().signIn('bob')
  const { tab } = await openTab(await listen(app), bob.sid!, { tabId: 'B' })
  t.equal((await ada.post('/api/locks', { resource: 'doc:old' })).statusCode, 201)
  t.equal((await fresh.post('/api/locks', { resource: 'doc:new' })).statusCode, 201)
  // Both sessions end, their locks left behind, without their job running (no workers here); one of them long ago.
  await endLeavingLocks(app, [ada.sessionId!, fresh.sessionId!], 'logout')
  await app.ctx.database.sql`update sessions set ended_at = now() - interval '5 minutes' where id = ${ada.sessionId!}`
  const result = await runCleanup(cleanupDeps(app))
  t.equal(result.locksReleased, 1, 'only the lock of the session that ended long ago')
  t.match(await tab.type('locks.released'), { resources: ['doc:old'], sessionId: ada.sessionId, reason: 'logout' })
  const left = await app.ctx.database.sql`select resource from locks`
  t.same(
    left.map((r) => r.resource),
    ['doc:new'],
    'a fresh ending is left to its own job',
  )
  t.equal((await runCleanup(cleanupDeps(app))).locksReleased, 0, 'nothing the second time')
})

t.test('the lock release goes on batch after batch until one comes back short', async (t) => {
  const app = await build(t, { LOGIN_RATE_LIMIT: '1000/min' })
  const ids: string[] = []
  for (let i = 0; i < 5; i++) {
    await app.user(`user${i}`)
    const c = await app.client().signIn(`user${i}`)
    t.equal((await c.post('/api/locks', { resource: `doc:${i}` })).statusCode, 201)
    ids.push(c.sessionId!)
  }
  const { sql } = app.ctx.database
  await endLeavingLocks(app, ids, 'admin')
  await sql`update sessions set ended_at = now() - interval '5 minutes' where id = any(${ids}::uuid[])`
  t.equal((await runCleanup(cleanupDeps(app, 2))).locksReleased, 5, 'one run, in batches of two, releases all five')
  t.same(await sql`select resource from locks`, [])
})

t.test('a retried session-ended job and an overlapping cleanup announce each release once', async (t) => {
  const app = await build(t, { LOGIN_RATE_LIMIT: '1000/min' })
  await app.user('observer')
  const observer = await app.client().signIn('observer')
  const { tab } = await openTab(await listen(app), observer.sid!, { tabId: 'O' })
  const { sql } = app.ctx.database
  const { ctx } = app
  const jobDeps = { endings: ctx.endings, sessions: ctx.sessions, locks: ctx.locks }
  const ids: string[] = []
  for (let i = 0; i < 6; i++) {
    await app.user(`user${i}`)
    const c = await app.client().signIn(`user${i}`)
    for (const r of ['a', 'b']) t.equal((await c.post('/api/locks', { resource: `doc:${i}:${r}` })).statusCode, 201)
    ids.push(c.sessionId!)
  }
  await endLeavingLocks(app, ids, 'logout')
  await sql`update sessions set ended_at = now() - interval '5 minutes' where id = any(${ids}::uuid[])`

  // The first half: their job ran and announced, then died before it could finish (no finalized_at); now it is retried.
  for (const id of ids.slice(0, 3)) {
    await processSessionEnded(jobDeps, { sessionId: id, userId: 0, reason: 'logout' })
    await sql`update sessions set finalized_at = null where id = ${id}`
    await processSessionEnded(jobDeps, { sessionId: id, userId: 0, reason: 'logout' })
  }
  // The second half: their jobs run while the cleanup releases the same sessions' locks.
  await Promise.all([
    runCleanup(cleanupDeps(app, 2)),
    ...ids.slice(3).map((id) => processSessionEnded(jobDeps, { sessionId: id, userId: 0, reason: 'logout' })),
  ])
  await until('every release announced', async () => ids.every((id) => tab.messages.some((m) => m.type === 'locks.released' && m.sessionId === id)))
  await sleep(500)
  for (const [i, id] of ids.entries()) {
    const heard = tab.messages.filter((m) => m.type === 'locks.released' && m.sessionId === id)
    t.same(
      heard.map((m) => m.resources),
      [[`doc:${i}:a`, `doc:${i}:b`]],
      `user${i}: announced once`,
    )
    const audit = await sql`select count(*)::int as n from audit_events where session_id = ${id} and type = 'locks.released'`
    t.equal(audit[0]!.n, 1, `user${i}: released once`)
  }
  t.same(await sql`select resource from locks`, [])
})

t.test('the cleanup ends sessions past a deadline by the first one, releasing their locks', async (t) => {
  const app = await build(t)
  const { sql } = app.ctx.database
  const cases = [
    { name: 'idle', expires: "now() + interval '1 day'", last: "now() - interval '3 hours'", reason: 'idle_timeout' },
    { name: 'both-lifetime-first', expires: "now() - interval '2 hours'", last: "now() - interval '3 hours'", reason: 'lifetime' },
    { name: 'both-idle-first', expires: "now() - interval '10 minutes'", last: "now() - interval '3 hours'", reason: 'idle_timeout' },
  ]
  const ids: string[] = []
  for (const c of cases) {
    await app.user(c.name)
    const client = await app.client().signIn(c.name)
    t.equal((await client.post('/api/locks', { resource: `doc:${c.name}` })).statusCode, 201)
    const id = client.sessionId!
    ids.push(id)
    await sql.unsafe(`update sessions set expires_at = ${c.expires}, last_activity = ${c.last} where id = $1`, [id])
    // Redis has forgotten it: only the cleanup can see it.
    for (const key of app.ctx.keys.deadlines(id).lists) await app.resources.redis.zrem(key, id)
    await app.resources.redis.unlink(app.ctx.keys.sessionPresence(id))
  }
  t.equal((await runCleanup(cleanupDeps(app))).expired, 3, 'the cleanup ends all three')
  for (const [i, c] of cases.entries()) {
    t.match((await sql`select end_reason from sessions where id = ${ids[i]!}`)[0], { end_reason: c.reason }, `${c.name}: ${c.reason}`)
  }
  t.same(await sql`select resource from locks`, [], 'their locks are released with the ending')
  const workers = await startWorkers(app)
  t.teardown(() => workers.close())
  await until('their jobs to finalize the endings', async () => (await sql`select count(*)::int as n from sessions where finalized_at is not null`)[0]!.n === 3)
  for (const [i, c] of cases.entries()) {
    const released = await sql`select data from audit_events where session_id = ${ids[i]!} and type = 'locks.released'`
    t.match(released, [{ data: { resources: [`doc:${c.name}`], reason: c.reason } }], `${c.name}: released once`)
  }
})
