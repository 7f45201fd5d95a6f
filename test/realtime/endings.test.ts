import t from 'tap'
import { build } from '../helpers/app.js'
import { listen, openTab } from '../helpers/ws.js'

t.test('logout in one tab: every tab gets session.logged_out, then close 4003', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const a = await openTab(address, ada.sid!, { tabId: 'A' })
  const b = await openTab(address, ada.sid!, { tabId: 'B' })
  await ada.post('/api/auth/logout', undefined, { 'x-tab-id': 'A' })
  for (const tab of [a.tab, b.tab]) {
    t.match(await tab.type('session.logged_out'), { seq: 1, byTabId: 'A' })
    t.equal((await tab.closed).code, 4003)
  }
})

const endings = [
  { name: 'revoke from another device', code: 4001, reason: 'revoked_by_user' },
  { name: 'password change elsewhere', code: 4001, reason: 'password_changed' },
  { name: 'logout-all', code: 4001, reason: 'logout_all' },
  { name: 'session limit eviction', code: 4001, reason: 'session_limit' },
  { name: 'account disabled by an admin', code: 4001, reason: 'user_disabled' },
] as const

for (const ending of endings) {
  t.test(`${ending.name}: session.terminated (${ending.reason}) then close ${ending.code}`, async (t) => {
    const app = await build(t)
    const { id } = await app.user('ada')
    const address = await listen(app)
    const victim = await app.client().signIn('ada')
    const other = await app.client().signIn('ada')
    const a = await openTab(address, victim.sid!, { tabId: 'A' })
    const b = await openTab(address, victim.sid!, { tabId: 'B' })
    if (ending.reason === 'revoked_by_user') await other.delete(`/api/sessions/${victim.sessionId}`)
    if (ending.reason === 'password_changed') await other.post('/api/auth/password', { currentPassword: 'correct-horse-battery', newPassword: 'another-long-password' })
    if (ending.reason === 'logout_all') await other.post('/api/auth/logout-all')
    if (ending.reason === 'session_limit') {
      await app.ctx.settings.update({ concurrentLimits: { default: 2 } }, id)
      await app.client().signIn('ada')
    }
    if (ending.reason === 'user_disabled') {
      const admin = await app.client().signIn('admin', 'admin-password-1')
      await admin.patch(`/admin/users/${id}`, { disabled: true })
    }
    for (const tab of [a.tab, b.tab]) {
      t.match(await tab.type('session.terminated'), { reason: ending.reason, message: String, seq: 1 })
      t.equal((await tab.closed).code, ending.code)
    }
  })
}

t.test('a tab that was offline learns why its session ended when it reconnects', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const token = ada.sid!
  const tab = await openTab(address, token, { tabId: 'A' })
  await tab.tab.close()
  await app.client().signIn('ada').then((other) => other.delete(`/api/sessions/${ada.sessionId}`))

  for (const hello of [{ tabId: 'A', lastSeq: 0 }, { tabId: 'B' }]) {
    const { connect } = await import('../helpers/ws.js')
    const back = await connect(address, { cookie: `sid=${token}` })
    back.send({ type: 'hello', view: '/', ...hello })
    t.match(await back.type('session.terminated'), { reason: 'revoked_by_user', seq: 1 }, `with ${JSON.stringify(hello)}`)
    t.equal((await back.closed).code, 4001)
  }
})

t.test('an expired session tells a reconnecting tab session.expired and closes 4002', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const tab = await openTab(address, ada.sid!, { tabId: 'A' })
  const [row] = await app.ctx.database.sql`update sessions set expires_at = now() - interval '1 second' where id = ${ada.sessionId!} returning token_hash`
  await app.resources.redis.del(app.ctx.keys.sessionByToken(row!.token_hash as string))
  t.equal((await ada.get('/api/platforms')).statusCode, 401, 'the next request finds the lifetime over')
  t.match(await tab.tab.type('session.expired'), { reason: 'lifetime' })
  t.equal((await tab.tab.closed).code, 4002)
})

t.test('a new login notifies the user’s other sessions with user.notice', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const tab = await openTab(address, ada.sid!, { tabId: 'A' })
  const iphone = { 'user-agent': 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Version/17.0 Mobile/15E148 Safari/604.1' }
  const newcomer = await app.client(iphone).signIn('ada')
  t.match(await tab.tab.type('user.notice'), { kind: 'new_login', device: { os: 'iOS' }, ip: '127.0.0.1', at: String, sessionId: newcomer.sessionId })
  const own = await openTab(address, newcomer.sid!, { tabId: 'N' }, { headers: iphone })
  await app.client().signIn('ada')
  await own.tab.type('user.notice')
  t.equal(own.tab.messages.filter((m) => m.type === 'user.notice').length, 1, 'a session is not told about its own login')
})
