import t from 'tap'
import { ADMIN_PASSWORD, build } from '../helpers/app.js'
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

const closedTab = async (address: string, sid: string, tabId: string) => {
  const { tab } = await openTab(address, sid, { tabId })
  await tab.close()
}

/** Reconnects with the cookie of an ended session; resolves with what the tab got before its close. */
async function reconnect(address: string, sid: string, hello: { tabId: string; lastSeq?: number }) {
  const { connect } = await import('../helpers/ws.js')
  const tab = await connect(address, { cookie: `sid=${sid}` })
  tab.send({ type: 'hello', view: '/', ...hello })
  const { code } = await tab.closed
  return { messages: tab.messages, code }
}

t.test('a tab that was offline learns on reconnect that the user logged out: session.logged_out, then 4003', async (t) => {
  const app = await build(t)
  const { platformIds } = await app.user('ada', { platforms: ['P0', 'P1'] })
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const sid = ada.sid!
  await closedTab(address, sid, 'A')
  await ada.post(`/api/switch_platform/${platformIds[1]}`) // seq 1, missed too
  await ada.post('/api/auth/logout', undefined, { 'x-tab-id': 'B' }) // seq 2
  const resumed = await reconnect(address, sid, { tabId: 'A', lastSeq: 0 })
  t.match(resumed.messages, [{ type: 'platform.switched', seq: 1 }, { type: 'session.logged_out', seq: 2, byTabId: 'B', at: String }], 'what it missed, the logout last')
  t.equal(resumed.code, 4003)
  const fresh = await reconnect(address, sid, { tabId: 'C' })
  t.match(fresh.messages, [{ type: 'session.logged_out', seq: 2, byTabId: 'B' }], 'without lastSeq: the terminal event alone')
  t.equal(fresh.code, 4003)
})

t.test('a tab that was offline learns on reconnect that its session expired: session.expired, then 4002', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const address = await listen(app)
  for (const reason of ['idle_timeout', 'lifetime'] as const) {
    const ada = await app.client().signIn('ada')
    await closedTab(address, ada.sid!, 'A')
    await app.ctx.sessions.end([ada.sessionId!], reason) // what the idle sweep does
    const back = await reconnect(address, ada.sid!, { tabId: 'A', lastSeq: 0 })
    t.match(back.messages, [{ type: 'session.expired', reason, seq: 1, at: String }], reason)
    t.equal(back.code, 4002)
  }
})

t.test('when the log of an ended session is gone, the made-up terminal event still has a seq and at', async (t) => {
  // Bug 9: the synthesized event had no seq. It has the seq the event had (the counter
  // survived) or would have had, and `at` is when the session ended.
  const app = await build(t)
  const { platformIds } = await app.user('ada', { platforms: ['P0', 'P1'] })
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const sid = ada.sid!
  const sessionId = ada.sessionId!
  await ada.post(`/api/switch_platform/${platformIds[1]}`) // seq 1
  await app.client().signIn('ada').then((other) => other.delete(`/api/sessions/${sessionId}`)) // seq 2
  const [row] = await app.resources.database.sql`select ended_at from sessions where id = ${sessionId}`
  const endedAt = (row!.ended_at as Date).toISOString()
  const redis = app.resources.redis
  const keys = app.ctx.keys

  await redis.del(keys.sessionLog(sessionId))
  for (const hello of [{ tabId: 'A', lastSeq: 1 }, { tabId: 'B' }]) {
    const back = await reconnect(address, sid, hello)
    t.same(
      back.messages,
      [{ type: 'session.terminated', reason: 'revoked_by_user', message: 'Signed out from another device', at: endedAt, seq: 2 }],
      `log gone, counter kept: the seq it had (${JSON.stringify(hello)})`,
    )
    t.equal(back.code, 4001)
  }

  await redis.del(keys.sessionSeq(sessionId))
  const lost = await reconnect(address, sid, { tabId: 'A', lastSeq: 1 })
  t.match(lost.messages, [{ type: 'session.terminated', reason: 'revoked_by_user', seq: Number, at: endedAt }])
  t.ok(lost.messages[0]!.seq! > 2, 'everything gone: a seq of a new numbering, above the old ones (issue 12, defect 1)')
  t.equal(lost.code, 4001)
  const other = await reconnect(address, sid, { tabId: 'B' })
  t.equal(other.messages[0]?.seq, lost.messages[0]!.seq, 'and every tab is told the same')
})

t.test('the cookie of a session that ended more than EVENT_LOG_TTL_SECONDS ago is refused with 401', async (t) => {
  const app = await build(t, { EVENT_LOG_TTL_SECONDS: '60' })
  await app.user('ada')
  const address = await listen(app)
  const { connect } = await import('../helpers/ws.js')
  const refusal = (p: Promise<unknown>) => p.then(() => ({ status: 101, body: '' }), (e: { status: number; body: string }) => e)
  const ada = await app.client().signIn('ada')
  const sid = ada.sid!
  await ada.post('/api/auth/logout')
  const within = await connect(address, { cookie: `sid=${sid}` })
  t.ok(within, 'within the window the upgrade succeeds (to tell the tab why)')
  within.ws.close()

  // Ended 61 s ago: moved back in PostgreSQL, and the cached record dropped.
  const [row] = await app.resources.database.sql`update sessions set ended_at = now() - interval '61 seconds'
    where id = ${ada.sessionId!} returning token_hash`
  await app.resources.redis.del(app.ctx.keys.sessionByToken(row!.token_hash as string))
  const late = await refusal(connect(address, { cookie: `sid=${sid}` }))
  t.equal(late.status, 401)
  t.match(JSON.parse(late.body), { error: { code: 'SESSION_TERMINATED', reason: 'logout', message: String } })
})

t.test('an administrator’s reason reaches a tab however it learns of the ending: refusal, PostgreSQL’s record, or the made-up event', async (t) => {
  // A tab whose request or reconnect crossed the termination learned only "Session
  // terminated by administrator", without the reason its sibling tabs were shown.
  const app = await build(t)
  await app.user('ada')
  const address = await listen(app)
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  const ada = await app.client().signIn('ada')
  const sid = ada.sid!
  const sessionId = ada.sessionId!
  t.equal((await admin.delete(`/admin/sessions/${sessionId}`, { reason: 'Security review' })).statusCode, 200)
  const refused = { error: { code: 'SESSION_TERMINATED', reason: 'admin', note: 'Security review' } }
  // The first refusal clears the client's cookie; a tab still sending it is asked again.
  const sessionState = () => ada.get('/api/session_state', { cookie: `sid=${sid}` })
  t.match((await sessionState()).json(), refused, 'the refusal from the cached record')
  const [row] = await app.resources.database.sql`select token_hash from sessions where id = ${sessionId}`
  await app.resources.redis.del(app.ctx.keys.sessionByToken(row!.token_hash as string))
  t.match((await sessionState()).json(), refused, 'and from PostgreSQL’s')

  await app.resources.redis.del(app.ctx.keys.sessionLog(sessionId))
  const back = await reconnect(address, sid, { tabId: 'A', lastSeq: 0 })
  t.match(back.messages, [{ type: 'session.terminated', reason: 'admin', note: 'Security review' }], 'the event made up when the log is gone')
  t.equal(back.code, 4001)
})
