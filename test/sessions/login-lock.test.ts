// The user's login lock (sessions/service.ts): logins of one user take turns under it, and
// whatever must not race a login (a role change's limit) runs under it too.
import type { LightMyRequestResponse } from 'fastify'
import postgres from 'postgres'
import t from 'tap'
import { LOGIN_LOCK } from '../../src/sessions/service.js'
import { ADMIN_PASSWORD, build, PASSWORD, type TestApp } from '../helpers/app.js'
import { until } from '../helpers/wait.js'

interface Teardown {
  teardown(fn: () => unknown): void
}

/** A connection of the test's own that can hold a user's login lock, as a long login would. */
function lockHolder(t: Teardown, app: TestApp) {
  const sql = postgres(app.databaseUrl, { max: 1, onnotice: () => {} })
  t.teardown(() => sql.end({ timeout: 1 }))
  return {
    hold: (userId: number) => sql`select pg_advisory_lock(${LOGIN_LOCK}, ${userId})`,
    release: (userId: number) => sql`select pg_advisory_unlock(${LOGIN_LOCK}, ${userId})`,
    /** Connections of this database waiting for an advisory lock. */
    async waiting(): Promise<number> {
      const [row] = await sql`select count(*)::int as n from pg_locks where locktype = 'advisory' and not granted
        and database = (select oid from pg_database where datname = current_database())`
      return row!.n as number
    },
  }
}

/** Resolves with the answers once every request has one; fails the test when they hang. */
async function answered(requests: Promise<LightMyRequestResponse>[], what: string, ms = 30_000) {
  let answers: LightMyRequestResponse[] | null = null
  void Promise.all(requests).then((all) => {
    answers = all
  })
  return until(what, () => answers, ms)
}

t.test('a role change and logins of the same user never deadlock the pool, even a pool of two', async (t) => {
  // issue 12, defect 2
  const app = await build(t, { DATABASE_POOL_MAX: '2' })
  const { id } = await app.user('ada')
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  t.equal((await admin.put('/admin/sessions/config', { concurrentLimits: { byRole: { reviewer: 1 } } })).statusCode, 200)
  const lock = lockHolder(t, app)

  // Line them up: the role change first, then a login holding the pool's other connection.
  await lock.hold(id)
  const roleChange = admin.patch(`/admin/users/${id}`, { role: 'reviewer' })
  await until('the role change to wait for the login lock', async () => (await lock.waiting()) === 1)
  const logins = Array.from({ length: 6 }, () => app.client().login('ada'))
  await until('a login to wait for it too', async () => (await lock.waiting()) === 2)
  await lock.release(id)

  const [change, ...signIns] = await answered([roleChange, ...logins], 'the role change and the logins to be answered')
  t.equal(change!.statusCode, 200, 'the role change went through')
  t.same(
    signIns.map((r) => r.statusCode),
    [200, 200, 200, 200, 200, 200],
    'every login went through',
  )
  const active = await app.ctx.database.sql`select id from sessions where user_id = ${id} and status = 'active'`
  t.equal(active.length, 1, "the reviewer's limit of 1 holds")
  t.equal((await app.app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200, 'PostgreSQL still answers')
})

t.test('a password change ends the session of a login that checked the old password just before', async (t) => {
  // issue 12, defect 6
  const app = await build(t)
  const { id } = await app.user('ada')
  const ada = await app.client().signIn('ada')
  const lock = lockHolder(t, app)

  // A login checks the old password, and is slow to open its session (it waits for the lock)…
  await lock.hold(id)
  const late = app.client()
  const login = late.login('ada', PASSWORD)
  await until('the login to wait for the lock', async () => (await lock.waiting()) === 1)
  // …while the password is changed in another browser.
  const change = ada.post('/api/auth/password', { currentPassword: PASSWORD, newPassword: 'a-brand-new-password' })
  let changed = false
  void change.then(() => {
    changed = true
  })
  await until('the change to be answered, or to wait for the lock too', async () => changed || (await lock.waiting()) === 2)
  await lock.release(id)

  const [signIn, changeAnswer] = await answered([login, change], 'the login and the change to be answered')
  t.equal(changeAnswer!.statusCode, 204)
  t.equal(signIn!.statusCode, 200, 'the login came first')
  t.match((await late.get('/api/session_state')).json(), { error: { code: 'SESSION_TERMINATED', reason: 'password_changed' } }, 'and the change ended it')
  const active = await app.ctx.database.sql`select id from sessions where user_id = ${id} and status = 'active'`
  t.same(
    active.map((r) => r.id),
    [ada.sessionId],
    'only the browser that changed the password is still signed in',
  )
})

t.test('a login that checked the old password while an admin changed it is refused', async (t) => {
  // issue 12, defect 6
  const app = await build(t)
  const { id } = await app.user('ada')
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  const lock = lockHolder(t, app)

  await lock.hold(id)
  const change = admin.patch(`/admin/users/${id}`, { password: 'a-brand-new-password' })
  await until('the change to wait for the login lock', async () => (await lock.waiting()) === 1)
  const late = app.client()
  const login = late.login('ada', PASSWORD)
  await until('the login, past its password check, to wait behind it', async () => (await lock.waiting()) === 2)
  await lock.release(id)

  const [changeAnswer, signIn] = await answered([change, login], 'the change and the login to be answered')
  t.equal(changeAnswer!.statusCode, 200)
  t.equal(signIn!.statusCode, 401)
  t.equal(signIn!.json().error.code, 'INVALID_CREDENTIALS')
  t.equal((await app.ctx.database.sql`select id from sessions where user_id = ${id} and status = 'active'`).length, 0, 'no session of the old password')
  t.equal((await app.client().login('ada', 'a-brand-new-password')).statusCode, 200, 'the new password works')
})
