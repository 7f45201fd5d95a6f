// A lock belongs to a session and never outlives it (README's spec words): not even when
// the session ends while a request that will take a lock is on its way.
import t from 'tap'
import { ADMIN_PASSWORD, build, testDatabaseUrl } from '../helpers/app.js'
import { TcpProxy } from '../helpers/tcp-proxy.js'
import { until } from '../helpers/wait.js'

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
