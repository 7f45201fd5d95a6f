// Account administration (http.md, "Admin": /admin/users and unlock), and who may use /admin.
import t from 'tap'
import { ADMIN_PASSWORD, build, PASSWORD, type TestApp } from '../helpers/app.js'
import { listen, openTab } from '../helpers/ws.js'

const signInAdmin = (app: TestApp) => app.client().signIn('admin', ADMIN_PASSWORD)

async function auditOf(app: TestApp, type: string, userId: number) {
  return app.ctx.database.sql`select actor_user_id, user_id, data from audit_events where type = ${type} and user_id = ${userId} order by id`
}

t.test('a non-admin is FORBIDDEN on every admin route, and an anonymous caller UNAUTHENTICATED', async (t) => {
  const app = await build(t)
  const { id } = await app.user('ada', { role: 'reviewer' })
  const ada = await app.client().signIn('ada')
  const anon = app.client()
  const routes: [string, string, Record<string, unknown>?][] = [
    ['GET', '/admin/users'],
    ['POST', '/admin/users', { username: 'eve', email: 'eve@example.com', password: PASSWORD, role: 'admin' }],
    ['PATCH', `/admin/users/${id}`, { role: 'admin' }],
    ['POST', `/admin/users/${id}/unlock`],
    ['GET', '/admin/sessions/config'],
    ['PUT', '/admin/sessions/config', { idleWarningSeconds: 30 }],
  ]
  for (const [method, url, body] of routes) {
    const res = await ada.request(method as 'GET', url, body)
    t.equal(res.statusCode, 403, `${method} ${url} as reviewer`)
    t.equal(res.json().error.code, 'FORBIDDEN', `${method} ${url} as reviewer`)
    const anonRes = await anon.request(method as 'GET', url, body)
    t.equal(anonRes.statusCode, 401, `${method} ${url} without a session`)
    t.equal(anonRes.json().error.code, 'UNAUTHENTICATED', `${method} ${url} without a session`)
  }
  const [row] = await app.ctx.database.sql`select role from users where id = ${id}`
  t.equal(row!.role, 'reviewer', 'the reviewer did not promote herself')
  t.equal((await app.ctx.database.sql`select 1 from users where username = 'eve'`).length, 0, 'no account was created')
  t.equal((await app.ctx.settings.get()).idleWarningSeconds, 60, 'settings were not changed')
})

t.test('an admin pages through the accounts with limit and cursor', async (t) => {
  const app = await build(t)
  for (const name of ['u1', 'u2', 'u3', 'u4', 'u5']) await app.user(name)
  const admin = await signInAdmin(app)

  const all = (await admin.get('/admin/users?limit=500')).json()
  t.equal(all.items.length, 6, 'admin and five users')
  t.equal(all.nextCursor, null)
  t.match(all.items[0], { id: Number, username: 'admin', email: null, role: 'admin', disabled: false, lockedUntil: null, createdAt: String })
  t.same(Object.keys(all.items[0]).sort(), ['createdAt', 'disabled', 'email', 'id', 'lockedUntil', 'role', 'username'])

  const seen: string[] = []
  let url = '/admin/users?limit=2'
  let pages = 0
  for (;;) {
    const res = await admin.get(url)
    t.equal(res.statusCode, 200)
    const page = res.json()
    pages++
    t.ok(page.items.length <= 2)
    seen.push(...page.items.map((u: { username: string }) => u.username))
    if (page.nextCursor === null) break
    t.type(page.nextCursor, 'string')
    url = `/admin/users?limit=2&cursor=${encodeURIComponent(page.nextCursor)}`
    if (pages > 10) break
  }
  t.equal(pages, 3, 'six accounts in pages of two')
  t.same(
    seen,
    all.items.map((u: { username: string }) => u.username),
    'every account once, in the same order',
  )
})

t.test('the account list filters by text and by role', async (t) => {
  const app = await build(t)
  await app.user('alice', { role: 'reviewer' })
  await app.user('malik')
  await app.user('bob', { role: 'reviewer' })
  const admin = await signInAdmin(app)
  const names = async (query: string) => {
    const res = await admin.get(`/admin/users?${query}`)
    t.equal(res.statusCode, 200, query)
    return res
      .json()
      .items.map((u: { username: string }) => u.username)
      .sort()
  }
  t.same(await names('q=ali'), ['alice', 'malik'])
  t.same(await names('q=ALI'), ['alice', 'malik'], 'the text filter ignores case')
  t.same(await names('q=bob%40example'), ['bob'], 'the text filter covers the email')
  t.same(await names('role=reviewer'), ['alice', 'bob'])
  t.same(await names('role=reviewer&q=ali'), ['alice'])
  t.same(await names('q=nobody'), [])

  const badRole = await admin.get('/admin/users?role=superuser')
  t.equal(badRole.statusCode, 400)
  t.equal(badRole.json().error.code, 'VALIDATION_FAILED')
})

t.test('a limit outside 1–500 is VALIDATION_FAILED naming limit', async (t) => {
  const app = await build(t)
  const admin = await signInAdmin(app)
  for (const limit of ['0', '501', 'ten']) {
    const res = await admin.get(`/admin/users?limit=${limit}`)
    t.equal(res.statusCode, 400, `limit=${limit}`)
    t.equal(res.json().error.code, 'VALIDATION_FAILED')
    t.match(res.json().error.message, /limit/)
  }
  t.equal((await admin.get('/admin/users?limit=1')).statusCode, 200)
  t.equal((await admin.get('/admin/users?limit=500')).statusCode, 200)
})

t.test('an admin creates an account that can sign in', async (t) => {
  const app = await build(t)
  const admin = await signInAdmin(app)
  const res = await admin.post('/admin/users', { username: 'Grace', email: 'grace@example.com', password: 'grace-password-1', role: 'reviewer' })
  t.equal(res.statusCode, 201)
  const user = res.json()
  t.same(user, {
    id: user.id,
    username: 'Grace',
    email: 'grace@example.com',
    role: 'reviewer',
    disabled: false,
    lockedUntil: null,
    createdAt: user.createdAt,
  })
  t.type(user.id, 'number')
  t.ok(Math.abs(Date.parse(user.createdAt) - Date.now()) < 60_000, 'createdAt is now')

  const grace = app.client()
  const login = await grace.login('Grace', 'grace-password-1')
  t.equal(login.statusCode, 200)
  t.equal(login.json().user.role, 'reviewer')

  const [row] = await app.ctx.database.sql`select password_hash from users where id = ${user.id}`
  t.match(row!.password_hash, /^\$argon2id\$/, 'only an argon2id hash is stored')

  const audit = await auditOf(app, 'user.created', user.id)
  t.equal(audit.length, 1)
  t.match(audit[0], { actor_user_id: Number, data: { username: 'Grace', role: 'reviewer' } })
})

t.test('creating an account refuses a taken name, a weak password and bad fields', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const admin = await signInAdmin(app)
  const ok = { username: 'newbie', email: 'newbie@example.com', password: 'a-fine-password', role: 'user' }

  const taken = await admin.post('/admin/users', { ...ok, username: 'ADA' })
  t.equal(taken.statusCode, 409)
  t.equal(taken.json().error.code, 'USERNAME_TAKEN', 'usernames are unique regardless of case')

  const short = await admin.post('/admin/users', { ...ok, password: 'short' })
  t.equal(short.statusCode, 400)
  t.equal(short.json().error.code, 'WEAK_PASSWORD')

  const same = await admin.post('/admin/users', { ...ok, username: 'longusername', password: 'LongUserName' })
  t.equal(same.statusCode, 400)
  t.equal(same.json().error.code, 'WEAK_PASSWORD', 'the password may not be the username')

  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['unknown role', { ...ok, role: 'superuser' }, /role/],
    ['bad email', { ...ok, email: 'not-an-email' }, /email/],
    ['missing password', { username: ok.username, email: ok.email, role: ok.role }, /password/],
    ['unknown field', { ...ok, isAdmin: true }, /isAdmin/],
  ]
  for (const [what, body, field] of cases) {
    const res = await admin.post('/admin/users', body)
    t.equal(res.statusCode, 400, what)
    t.equal(res.json().error.code, 'VALIDATION_FAILED', what)
    t.match(res.json().error.message, field, what)
  }
  const rows = await app.ctx.database.sql`select username from users order by id`
  t.same(
    rows.map((r) => r.username),
    ['admin', 'ada'],
    'nothing was created',
  )
})

t.test('a role change applies to the user’s live session at once', async (t) => {
  const app = await build(t)
  const { id } = await app.user('ada')
  const ada = await app.client().signIn('ada')
  const admin = await signInAdmin(app)
  t.equal((await ada.get('/admin/users')).statusCode, 403)

  const promoted = await admin.patch(`/admin/users/${id}`, { role: 'admin' })
  t.equal(promoted.statusCode, 200)
  t.match(promoted.json(), { id, username: 'ada', role: 'admin' })
  t.equal((await ada.get('/admin/users')).statusCode, 200, 'the same cookie now reaches /admin')
  t.equal((await ada.get('/api/session_state')).json().user.role, 'admin')

  const demoted = await admin.patch(`/admin/users/${id}`, { role: 'user' })
  t.equal(demoted.statusCode, 200)
  const res = await ada.get('/admin/users')
  t.equal(res.statusCode, 403, 'and loses it as soon as she is demoted')
  t.equal(res.json().error.code, 'FORBIDDEN')

  const audit = await auditOf(app, 'user.changed', id)
  t.equal(audit.length, 2)
  t.match(audit[0]!.data, { before: { role: 'user' }, after: { role: 'admin' } })
})

t.test('disabling an account ends its sessions and refuses its sign-in', async (t) => {
  const app = await build(t)
  const { id } = await app.user('ada')
  const ada = await app.client().signIn('ada')
  const adaPhone = await app.client().signIn('ada')
  const admin = await signInAdmin(app)

  const res = await admin.patch(`/admin/users/${id}`, { disabled: true })
  t.equal(res.statusCode, 200)
  t.equal(res.json().disabled, true)

  for (const client of [ada, adaPhone]) {
    const next = await client.get('/api/session_state')
    t.equal(next.statusCode, 401)
    t.match(next.json(), { error: { code: 'SESSION_TERMINATED', reason: 'user_disabled' } })
  }
  const rows = await app.ctx.database.sql`select status, end_reason from sessions where user_id = ${id}`
  t.same(
    rows.map((r) => [r.status, r.end_reason]),
    [
      ['ended', 'user_disabled'],
      ['ended', 'user_disabled'],
    ],
  )

  const login = await app.client().login('ada')
  t.equal(login.statusCode, 401)
  t.equal(login.json().error.code, 'INVALID_CREDENTIALS', 'a disabled account answers like a wrong password')

  t.equal((await admin.patch(`/admin/users/${id}`, { disabled: false })).statusCode, 200)
  t.equal((await app.client().login('ada')).statusCode, 200, 'enabled again, she can sign in')
})

t.test('an admin password change ends the user’s sessions and the new password works', async (t) => {
  const app = await build(t)
  const { id } = await app.user('ada')
  const ada = await app.client().signIn('ada')
  const admin = await signInAdmin(app)

  const weak = await admin.patch(`/admin/users/${id}`, { password: 'short' })
  t.equal(weak.statusCode, 400)
  t.equal(weak.json().error.code, 'WEAK_PASSWORD')
  t.equal((await ada.get('/api/session_state')).statusCode, 200, 'a refused change ends nothing')

  const res = await admin.patch(`/admin/users/${id}`, { password: 'brand-new-password' })
  t.equal(res.statusCode, 200)
  const next = await ada.get('/api/session_state')
  t.equal(next.statusCode, 401)
  t.match(next.json(), { error: { code: 'SESSION_TERMINATED', reason: 'password_changed' } })

  t.equal((await app.client().login('ada', PASSWORD)).json().error.code, 'INVALID_CREDENTIALS', 'the old password is gone')
  t.equal((await app.client().login('ada', 'brand-new-password')).statusCode, 200)
  t.match((await auditOf(app, 'user.changed', id))[0]?.data, { passwordChanged: true })
})

t.test('changing an unknown account is USER_NOT_FOUND', async (t) => {
  const app = await build(t)
  const admin = await signInAdmin(app)
  const patch = await admin.patch('/admin/users/999999', { role: 'user' })
  t.equal(patch.statusCode, 404)
  t.equal(patch.json().error.code, 'USER_NOT_FOUND')
  const unlock = await admin.post('/admin/users/999999/unlock')
  t.equal(unlock.statusCode, 404)
  t.equal(unlock.json().error.code, 'USER_NOT_FOUND')
  const empty = await admin.patch('/admin/users/1', {})
  t.equal(empty.statusCode, 400, 'a change must change something')
  t.equal(empty.json().error.code, 'VALIDATION_FAILED')
})

t.test('the last enabled admin can be neither demoted nor disabled', async (t) => {
  const app = await build(t)
  const admin = await signInAdmin(app)
  const self = (await admin.get('/api/session_state')).json().user.id

  for (const change of [{ role: 'user' }, { disabled: true }]) {
    const res = await admin.patch(`/admin/users/${self}`, change)
    t.equal(res.statusCode, 409, JSON.stringify(change))
    t.equal(res.json().error.code, 'LAST_ADMIN')
  }
  t.equal((await admin.get('/admin/users')).statusCode, 200, 'the admin is still an admin')

  const { id } = await app.user('second', { role: 'admin' })
  const demote = await admin.patch(`/admin/users/${self}`, { role: 'user' })
  t.equal(demote.statusCode, 200, 'with a second admin, the first may step down')
  const last = await (await app.client().signIn('second')).patch(`/admin/users/${id}`, { disabled: true })
  t.equal(last.statusCode, 409)
  t.equal(last.json().error.code, 'LAST_ADMIN')
})

t.test('an account locked by failed sign-ins is unlocked by an admin', async (t) => {
  const app = await build(t)
  const { id } = await app.user('ada')
  const admin = await signInAdmin(app)
  const config = await admin.put('/admin/sessions/config', { failedLogin: { threshold: 3, lockoutSeconds: 600 } })
  t.equal(config.statusCode, 200)

  const ada = app.client()
  for (let i = 1; i <= 2; i++) t.equal((await ada.login('ada', 'wrong-password-x')).statusCode, 401, `failure ${i}`)
  const third = await ada.login('ada', 'wrong-password-x')
  t.equal(third.statusCode, 423, 'the failure that reaches the threshold locks the account')
  const locked = await ada.login('ada', PASSWORD)
  t.equal(locked.statusCode, 423, 'even the right password is refused while locked')
  t.equal(locked.json().error.code, 'ACCOUNT_LOCKED')
  t.type(locked.json().error.retryAfterSeconds, 'number')
  t.ok(locked.json().error.retryAfterSeconds > 590 && locked.json().error.retryAfterSeconds <= 600)

  const listed = (await admin.get('/admin/users?q=ada')).json().items[0]
  t.type(listed.lockedUntil, 'string', 'the list shows the lockout')

  const res = await admin.post(`/admin/users/${id}/unlock`)
  t.equal(res.statusCode, 204)
  t.equal(res.body, '')
  t.equal((await admin.get('/admin/users?q=ada')).json().items[0].lockedUntil, null)
  t.equal((await ada.login('ada', PASSWORD)).statusCode, 200, 'she can sign in again')

  const audit = await auditOf(app, 'user.unlocked', id)
  t.equal(audit.length, 1)
  t.type(audit[0]!.actor_user_id, 'number')
})

t.test('unlocking also forgets earlier failures, so the count starts afresh', async (t) => {
  const app = await build(t)
  const { id } = await app.user('ada')
  const admin = await signInAdmin(app)
  await admin.put('/admin/sessions/config', { failedLogin: { threshold: 2 } })
  const ada = app.client()
  t.equal((await ada.login('ada', 'wrong-password-x')).statusCode, 401)
  t.equal((await admin.post(`/admin/users/${id}/unlock`)).statusCode, 204)
  t.equal((await ada.login('ada', 'wrong-password-x')).statusCode, 401, 'one failure after the unlock does not lock')
  t.equal((await ada.login('ada', 'wrong-password-x')).statusCode, 423, 'the second does')
})

// Guards a fixed race: the last-admin check and the change were separate steps, so two
// admins disabling each other at once could both succeed and leave no admin at all.
t.test('two admins disabling each other at once leave one admin enabled', async (t) => {
  const app = await build(t)
  const admin = await signInAdmin(app)
  for (let round = 0; round < 5; round++) {
    const { id } = await app.user(`second${round}`, { role: 'admin' })
    const results = await Promise.all([admin.patch('/admin/users/1', { disabled: true }), admin.patch(`/admin/users/${id}`, { disabled: true })])
    const codes = results.map((r) => (r.statusCode === 200 ? 'ok' : r.json().error.code))
    t.equal(codes.filter((c) => c === 'ok').length, 1, `round ${round}: one change wins (${codes})`)
    // The loser is LAST_ADMIN, or — when the winner disabled the caller's own account
    // before the loser was authenticated — SESSION_TERMINATED, or FORBIDDEN when that came
    // between its authentication and the admin check (which reads the account as it is).
    t.ok(
      codes.every((c) => c === 'ok' || c === 'LAST_ADMIN' || c === 'SESSION_TERMINATED' || c === 'FORBIDDEN'),
      `round ${round}: the loser is refused (${codes})`,
    )
    const [row] = await app.ctx.database.sql`select count(*)::int as n from users where role = 'admin' and not disabled`
    t.equal(row!.n, 1, `round ${round}: one admin remains`)
    // Back to the start: the first admin enabled and signed in, the second one gone.
    await app.ctx.database.sql`update users set disabled = true where id = ${id}`
    await app.ctx.database.sql`update users set disabled = false where id = 1`
    await admin.signIn('admin', ADMIN_PASSWORD)
  }
})

t.test('a role change applies its limit to live sessions at once: a demoted user at 3 sessions keeps the most recent', async (t) => {
  const app = await build(t, { ADMIN_FEED_INTERVAL_MS: '100' })
  const { id } = await app.user('ada')
  const admin = await signInAdmin(app)
  await admin.put('/admin/sessions/config', { concurrentLimits: { byRole: { reviewer: 1 } } })
  const other = await app.node()
  const [one, two] = [await listen(app), await listen(other)]
  const laptop = await app.client().signIn('ada')
  const phone = await app.client().signIn('ada')
  const tablet = await app.client().signIn('ada')
  const laptopTab = (await openTab(one, laptop.sid!, { tabId: 'L' })).tab
  const phoneTab = (await openTab(two, phone.sid!, { tabId: 'P' })).tab
  const tabletTab = (await openTab(two, tablet.sid!, { tabId: 'T' })).tab
  // Input on the phone: it is now the most recently active, though it signed in second.
  phoneTab.send({ type: 'activity', at: Date.now() })
  phoneTab.send({ type: 'ping', id: 'input' })
  await phoneTab.next((m) => m.id === 'input')
  const feed = (await openTab(one, admin.sid!, { tabId: 'admin' })).tab
  feed.send({ type: 'admin.subscribe', filter: { user: 'ada' } })
  await feed.type('admin.snapshot')

  const res = await admin.patch(`/admin/users/${id}`, { role: 'reviewer' })
  t.equal(res.statusCode, 200)
  t.equal(res.json().role, 'reviewer')

  for (const [what, client, tab] of [
    ['laptop', laptop, laptopTab],
    ['tablet', tablet, tabletTab],
  ] as const) {
    t.match(await tab.type('session.terminated'), { reason: 'session_limit', note: /role changed to reviewer, which allows 1 session/ }, what)
    t.equal((await tab.closed).code, 4001, what)
    t.match((await client.get('/api/session_state')).json(), { error: { code: 'SESSION_TERMINATED', reason: 'session_limit' } }, what)
  }
  t.match(await phoneTab.type('session.state'), { state: { user: { id, role: 'reviewer' }, session: { id: phone.sessionId } }, seq: Number }, 'the kept session hears its new role')
  t.equal((await phone.get('/api/session_state')).json().user.role, 'reviewer', 'and its cached record has the new role')
  const removed = new Set<string>()
  let upserted = false
  await feed.next((m) => {
    if (m.type !== 'admin.delta') return false
    for (const r of m.removed as { id: string; reason: string }[]) if (r.reason === 'session_limit') removed.add(r.id)
    upserted ||= (m.upserted as { id: string; role: string }[]).some((v) => v.id === phone.sessionId && v.role === 'reviewer')
    return removed.size === 2 && upserted
  })
  t.same([...removed].sort(), [laptop.sessionId, tablet.sessionId].sort(), 'the admin feed drops the ended sessions and shows the new role')
  const ended = await app.ctx.database.sql`select ended_by from sessions where user_id = ${id} and end_reason = 'session_limit'`
  t.equal(ended.length, 2)
  t.ok(ended.every((r) => r.ended_by === 1), 'ended by the admin who changed the role')

  t.equal((await admin.patch(`/admin/users/${id}`, { role: 'user' })).statusCode, 200)
  t.equal((await phone.get('/api/session_state')).statusCode, 200, 'a role with a higher limit ends nothing')
})

t.test('disabling a user closes their tabs on another node with user_disabled and 4001', async (t) => {
  const app = await build(t)
  const { id } = await app.user('ada')
  const admin = await signInAdmin(app)
  const other = await app.node()
  const ada = await app.client().signIn('ada')
  const { tab } = await openTab(await listen(other), ada.sid!, { tabId: 'A' })
  t.equal((await admin.patch(`/admin/users/${id}`, { disabled: true })).statusCode, 200)
  t.match(await tab.type('session.terminated'), { reason: 'user_disabled', message: 'Signed out because the account was disabled' })
  t.equal((await tab.closed).code, 4001)
})
