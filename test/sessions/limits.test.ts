import { sql } from 'drizzle-orm'
import t from 'tap'
import { build, type TestApp } from '../helpers/app.js'
import { until } from '../helpers/wait.js'

async function activeSessions(app: TestApp, username: string) {
  return app.ctx.database.sql`select s.id from sessions s join users u on u.id = s.user_id
    where u.username = ${username} and s.status = 'active'`
}

t.test('terminate_oldest: a login at the limit ends the least recently active session', async (t) => {
  const app = await build(t)
  const { id } = await app.user('rita', { role: 'reviewer' })
  await app.ctx.settings.update({ concurrentLimits: { byRole: { reviewer: 2 } } }, id)
  const first = await app.client().signIn('rita')
  const second = await app.client().signIn('rita')
  await first.get('/api/platforms') // first is now more recently active than second
  const third = await app.client().signIn('rita')
  t.match((await second.get('/api/platforms')).json(), { error: { code: 'SESSION_TERMINATED', reason: 'session_limit' } })
  t.equal((await first.get('/api/platforms')).statusCode, 200)
  t.equal((await third.get('/api/platforms')).statusCode, 200)
  t.equal((await activeSessions(app, 'rita')).length, 2)
})

t.test('block_new: a login at the limit is refused with the sessions to choose from, and endSessionId drops one', async (t) => {
  const app = await build(t)
  const { id } = await app.user('ada')
  await app.ctx.settings.update({ limitPolicy: 'block_new', concurrentLimits: { byUser: { [String(id)]: 1 } } }, id)
  const laptop = await app.client().signIn('ada')
  const blocked = await app.client().login('ada')
  t.equal(blocked.statusCode, 409)
  const err = blocked.json().error
  t.equal(err.code, 'SESSION_LIMIT_REACHED')
  t.equal(err.limit, 1)
  t.match(err.sessions, [{ id: laptop.sessionId, username: 'ada', device: { browser: 'Chrome 140' }, status: 'active' }])
  t.notOk(blocked.cookies.some((c) => c.name === 'sid' && c.value), 'no session was opened')

  const wrongChoice = await app.client().login('ada', undefined, { endSessionId: '00000000-0000-4000-8000-000000000000' })
  t.equal(wrongChoice.statusCode, 409, 'naming a session that is not yours changes nothing')

  const phone = app.client()
  const res = await phone.login('ada', undefined, { endSessionId: laptop.sessionId })
  t.equal(res.statusCode, 200)
  t.match((await laptop.get('/api/platforms')).json(), { error: { code: 'SESSION_TERMINATED', reason: 'session_limit' } })
  t.equal((await phone.get('/api/platforms')).statusCode, 200)
  const history = await app.ctx.database.sql`select success, reason from login_attempts order by id`
  t.match(history, [{ success: true }, { success: false, reason: 'session_limit' }, { success: false, reason: 'session_limit' }, { success: true }])
})

t.test('limits apply by user, then by role, then the default', async (t) => {
  const app = await build(t)
  const ada = await app.user('ada', { role: 'reviewer' })
  await app.user('rita', { role: 'reviewer' })
  await app.user('uma')
  await app.ctx.settings.update({ concurrentLimits: { default: 3, byRole: { reviewer: 1 }, byUser: { [String(ada.id)]: 2 } } }, ada.id)
  for (let i = 0; i < 4; i++) {
    await app.client().signIn('ada')
    await app.client().signIn('rita')
    await app.client().signIn('uma')
  }
  t.equal((await activeSessions(app, 'ada')).length, 2, 'by user')
  t.equal((await activeSessions(app, 'rita')).length, 1, 'by role')
  t.equal((await activeSessions(app, 'uma')).length, 3, 'default')
})

t.test('sessions already past their deadline do not count against the limit', async (t) => {
  const app = await build(t)
  const { id } = await app.user('ada')
  await app.ctx.settings.update({ limitPolicy: 'block_new', concurrentLimits: { default: 1 } }, id)
  const old = await app.client().signIn('ada')
  await app.ctx.database.sql`update sessions set expires_at = now() - interval '1 second' where id = ${old.sessionId!}`
  t.equal((await app.client().login('ada')).statusCode, 200)
  const [row] = await app.ctx.database.sql`select end_reason from sessions where id = ${old.sessionId!}`
  t.equal(row!.end_reason, 'lifetime', 'the stale one was ended with its own reason')
})

t.test('race: 50 parallel logins with limit 1 under terminate_oldest leave exactly one active session', async (t) => {
  const app = await build(t, { LOGIN_RATE_LIMIT: '1000/min' })
  const { id } = await app.user('ada')
  await app.ctx.settings.update({ concurrentLimits: { default: 1 } }, id)
  const results = await Promise.all(Array.from({ length: 50 }, () => app.client().login('ada')))
  t.same(new Set(results.map((r) => r.statusCode)), new Set([200]), 'every login succeeds')
  const active = await activeSessions(app, 'ada')
  t.equal(active.length, 1, 'exactly one active session')
  const ended = await app.ctx.database.sql`select count(*)::int as n from sessions where status = 'ended' and end_reason = 'session_limit'`
  t.equal(ended[0]!.n, 49)
})

t.test('race: 50 parallel logins with limit 1 under block_new give exactly one success', async (t) => {
  const app = await build(t, { LOGIN_RATE_LIMIT: '1000/min' })
  const { id } = await app.user('ada')
  await app.ctx.settings.update({ limitPolicy: 'block_new', concurrentLimits: { default: 1 } }, id)
  const results = await Promise.all(Array.from({ length: 50 }, () => app.client().login('ada')))
  const codes = results.map((r) => r.statusCode)
  t.equal(codes.filter((c) => c === 200).length, 1)
  t.equal(codes.filter((c) => c === 409).length, 49)
  t.equal((await activeSessions(app, 'ada')).length, 1)
})

t.test('a login that was under way while the user lost a role gets the new role’s limit', async (t) => {
  const app = await build(t)
  const { id } = await app.user('rita', { role: 'admin' })
  await app.ctx.settings.update({ concurrentLimits: { default: 5, byRole: { reviewer: 1 } } }, id)
  await app.client().signIn('rita')
  let login: Promise<unknown> | undefined
  // Hold the user's login lock: the login below checks the password (as an admin), then waits for it…
  await app.ctx.sessions.whileLoginsWait(id, async ({ tx }) => {
    login = app.client().signIn('rita')
    await until('the login waits for the lock', async () => {
      const [row] = await tx.execute<{ n: number }>(sql`select count(*)::int as n from pg_locks where locktype = 'advisory' and not granted
        and database = (select oid from pg_database where datname = current_database())`)
      return row!.n > 0
    })
    // …while her role changes.
    await app.ctx.database.sql`update users set role = 'reviewer' where id = ${id}`
  })
  await login
  t.equal((await activeSessions(app, 'rita')).length, 1, 'the reviewer limit of 1 held')
})
