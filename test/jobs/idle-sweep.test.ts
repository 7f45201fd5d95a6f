import t from 'tap'
import { build, type TestApp } from '../helpers/app.js'
import { listen, openTab } from '../helpers/ws.js'

async function shortTimeouts(app: TestApp, s: { idleAfterSeconds: number; idleTimeoutSeconds: number; idleWarningSeconds: number }) {
  await app.ctx.settings.update(s, 1)
}

t.test('a session with no input goes idle, is warned, and expires; every tab is told and closed 4002', async (t) => {
  const app = await build(t, {}, { workers: true })
  await app.user('ada')
  await shortTimeouts(app, { idleAfterSeconds: 1, idleTimeoutSeconds: 3, idleWarningSeconds: 1 })
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const a = await openTab(address, ada.sid!, { tabId: 'A' })
  const b = await openTab(address, ada.sid!, { tabId: 'B' })
  for (const { tab } of [a, b]) {
    const idle = await tab.type('session.idle', 5000)
    const warning = await tab.type('session.idle_warning', 5000)
    const expired = await tab.type('session.expired', 5000)
    t.match(idle, { seq: 1, lastActivity: String })
    t.match(warning, { seq: 2, secondsLeft: Number, expiresAt: String })
    t.ok((warning.secondsLeft as number) <= 1)
    t.match(expired, { seq: 3, reason: 'idle_timeout' })
    t.equal((await tab.closed).code, 4002)
  }
  const [row] = await app.ctx.database.sql`select status, end_reason from sessions where id = ${ada.sessionId!}`
  t.match(row, { status: 'ended', end_reason: 'idle_timeout' })
  t.match((await ada.get('/api/platforms')).json(), { error: { code: 'SESSION_EXPIRED', reason: 'idle_timeout' } })
})

t.test('input in any one tab keeps the session active; heartbeats alone do not', async (t) => {
  const app = await build(t, {}, { workers: true })
  await app.user('ada')
  await app.user('bob')
  await shortTimeouts(app, { idleAfterSeconds: 1, idleTimeoutSeconds: 4, idleWarningSeconds: 0 })
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const bob = await app.client().signIn('bob')
  const typing = await openTab(address, ada.sid!, { tabId: 'typing' })
  const quiet = await openTab(address, ada.sid!, { tabId: 'quiet' })
  const bobTab = await openTab(address, bob.sid!, { tabId: 'bob' })
  const stop = Date.now() + 5500
  while (Date.now() < stop) {
    typing.tab.send({ type: 'activity', at: Date.now() })
    bobTab.tab.send({ type: 'heartbeat' })
    await new Promise((r) => setTimeout(r, 300))
  }
  t.equal((await ada.get('/api/session_state', {})).statusCode, 200, 'input in one tab kept the whole session alive')
  t.notOk(quiet.tab.messages.some((m) => m.type === 'session.expired'), 'the quiet tab of an active session is not expired')
  t.match(await bobTab.tab.type('session.expired', 8000), { reason: 'idle_timeout' }, 'a heartbeat-only session expires')
})

t.test('input after idle brings session.active', async (t) => {
  const app = await build(t, {}, { workers: true })
  await app.user('ada')
  await shortTimeouts(app, { idleAfterSeconds: 1, idleTimeoutSeconds: 30, idleWarningSeconds: 0 })
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const { tab } = await openTab(address, ada.sid!, { tabId: 'A' })
  await tab.type('session.idle', 5000)
  tab.send({ type: 'activity', at: Date.now() })
  t.match(await tab.type('session.active'), { lastActivity: String })
  const state = (await ada.get('/api/session_state')).json()
  t.equal(state.session.status, 'active')
})

t.test('the lifetime ends a session whatever its activity', async (t) => {
  const app = await build(t, {}, { workers: true })
  await app.user('ada')
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const { tab } = await openTab(address, ada.sid!, { tabId: 'A' })
  // Bring the end of the lifetime to now + 1.5 s (the minimum setting is a minute).
  const end = new Date(Date.now() + 1500)
  const [row] = await app.ctx.database.sql`update sessions set expires_at = ${end} where id = ${ada.sessionId!} returning token_hash`
  await app.resources.redis.del(app.ctx.keys.sessionByToken(row!.token_hash as string))
  await app.resources.redis.zadd(app.ctx.keys.dueLifetime, end.getTime(), ada.sessionId!)
  const stop = Date.now() + 1200
  while (Date.now() < stop) {
    tab.send({ type: 'activity', at: Date.now() })
    await new Promise((r) => setTimeout(r, 200))
  }
  t.match(await tab.type('session.expired', 5000), { reason: 'lifetime' })
  t.equal((await tab.closed).code, 4002)
})
