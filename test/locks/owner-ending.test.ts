// A lock belongs to a session and never outlives it (README's spec words): not even when
// the session ends while a request that will take a lock is on its way.
import t from 'tap'
import { ADMIN_PASSWORD, build, signedIn, startWorkers, testDatabaseUrl } from '../helpers/app.js'
import { TcpProxy } from '../helpers/tcp-proxy.js'
import { until } from '../helpers/wait.js'
import { listen, openTab } from '../helpers/ws.js'

t.test('a lock requested just before its session ends is not taken after the ending released the locks', async (t) => {
  // issue 12, defect 8
  const postgres = await TcpProxy.to(t, testDatabaseUrl('postgres'))
  const app = await build(t, {}, { via: { postgres }, workers: true })
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  const { sql } = app.ctx.database

  // The request has authenticated; its INSERT is held back on its way to PostgreSQL…
  const inserting = postgres.hold((_pipe, chunk) => chunk.includes('into locks'))
  const acquire = ada.post('/api/locks', { resource: 'doc:1' })
  await inserting
  // …while an admin ends the session, and its session-ended job releases its locks (none yet).
  t.equal((await admin.delete(`/admin/sessions/${ada.sessionId}`, { reason: 'left the company' })).statusCode, 200)
  await until('the ending to be finalized', async () => {
    const [row] = await sql`select finalized_at from sessions where id = ${ada.sessionId!}`
    return row?.finalized_at
  })
  postgres.release()

  const res = await acquire
  t.equal(res.statusCode, 401, 'the ended session takes no lock')
  t.match(res.json(), { error: { code: 'SESSION_TERMINATED', reason: 'admin' } })
  t.same(await sql`select resource from locks where session_id = ${ada.sessionId!}`, [], 'no lock of the ended session is left')
})

t.test('the locks of sessions that end together are free as soon as the ending returns, before any job runs', async (t) => {
  // issue 18: a burst of endings (the idle sweep ends up to 1,000 in one call) released its
  // locks only through its session-ended jobs, 1.6–2.0 s p99 later. No workers run here.
  const app = await build(t, { LOGIN_RATE_LIMIT: '1000/min' })
  const names = Array.from({ length: 12 }, (_, i) => `user${i}`)
  const holders = await signedIn(app, ...names)
  const [bob] = await signedIn(app, 'bob')
  const { tab } = await openTab(await listen(app), bob!.sid!, { tabId: 'B' })
  const resourcesOf = (i: number) => [`doc:${i}:a`, `doc:${i}:b`]
  for (const [i, c] of holders.entries()) for (const r of resourcesOf(i)) t.equal((await c.post('/api/locks', { resource: r })).statusCode, 201, `${names[i]} takes ${r}`)
  t.equal((await bob!.post('/api/locks', { resource: 'doc:0:a' })).statusCode, 409, 'bob waits: the lock is held')
  const ids = holders.map((c) => c.sessionId!)
  const { sql } = app.ctx.database

  // As the idle sweep ends a batch: one call for all of them.
  const ended = await app.ctx.sessions.end(ids, 'idle_timeout')
  t.equal(ended.length, 12, 'all twelve ended')
  t.same(await sql`select resource from locks where session_id = any(${ids}::uuid[])`, [], 'not one of their locks is left when the ending returns')
  t.same(await app.ctx.queues.all.sessionEnded.getJobCounts('completed', 'active'), { completed: 0, active: 0 }, 'and no session-ended job has run')
  for (const [i, id] of ids.entries()) {
    const released = await sql`select data from audit_events where type = 'locks.released' and session_id = ${id}`
    t.same(
      released.map((r) => (typeof r.data === 'string' ? JSON.parse(r.data) : r.data)),
      [{ resources: resourcesOf(i), reason: 'idle_timeout' }],
      `${names[i]}: one release recorded, with the ending`,
    )
  }
  const heard = await until('bob’s tab to hear of every release', () => {
    const m = tab.messages.filter((m) => m.type === 'locks.released')
    return m.length >= 12 && m
  })
  t.same(new Set(heard.map((m) => m.sessionId)), new Set(ids), 'announced for each session')
  t.equal((await bob!.post('/api/locks', { resource: 'doc:0:a' })).statusCode, 201, 'bob takes the lock')

  // The jobs still run (the safety net): they find nothing left to release and announce nothing twice.
  const workers = await startWorkers(app)
  t.teardown(() => workers.close())
  await until('every ending finalized', async () => (await sql`select count(*)::int as n from sessions where id = any(${ids}::uuid[]) and finalized_at is not null`)[0]!.n === 12)
  const releases = await sql`select session_id from audit_events where type = 'locks.released' and session_id = any(${ids}::uuid[])`
  t.equal(releases.length, 12, 'still one release per session')
  // A ping answered after the jobs: anything they published has reached the tab.
  tab.send({ type: 'ping', id: 1 })
  await tab.next((m) => m.type === 'pong')
  t.equal(tab.messages.filter((m) => m.type === 'locks.released').length, 12, 'and one announcement per session')
  t.same(await sql`select resource, session_id from locks`, [{ resource: 'doc:0:a', session_id: bob!.sessionId }], 'bob’s lock is his')
})
