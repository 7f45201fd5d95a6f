import t from 'tap'
import { build, startWorkers, type TestApp } from '../helpers/app.js'
import { until } from '../helpers/wait.js'
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
  await shortTimeouts(app, { idleAfterSeconds: 2, idleTimeoutSeconds: 5, idleWarningSeconds: 0 })
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const bob = await app.client().signIn('bob')
  const typing = await openTab(address, ada.sid!, { tabId: 'typing' })
  const quiet = await openTab(address, ada.sid!, { tabId: 'quiet' })
  const bobTab = await openTab(address, bob.sid!, { tabId: 'bob' })
  const stop = Date.now() + 6500
  while (Date.now() < stop) {
    typing.tab.send({ type: 'activity', at: Date.now() })
    bobTab.tab.send({ type: 'heartbeat' })
    await new Promise((r) => setTimeout(r, 250))
  }
  t.equal((await ada.get('/api/session_state', {})).statusCode, 200, 'input in one tab kept the whole session alive')
  for (const { tab } of [typing, quiet]) {
    t.notOk(
      tab.messages.some((m) => m.type === 'session.idle' || m.type === 'session.expired'),
      'no tab of the typing session was told it is idle, let alone expired',
    )
  }
  t.match(await bobTab.tab.type('session.expired', 8000), { reason: 'idle_timeout' }, 'a heartbeat-only session expires')
})

t.test('a second tab that only heartbeats, with an unchanged lastInputAt, does not keep its session active', async (t) => {
  const app = await build(t, {}, { workers: true })
  await app.user('ada')
  await shortTimeouts(app, { idleAfterSeconds: 1, idleTimeoutSeconds: 3, idleWarningSeconds: 0 })
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const typing = await openTab(address, ada.sid!, { tabId: 'typing' })
  const heartbeating = await openTab(address, ada.sid!, { tabId: 'heartbeating' })
  const lastInputAt = Date.now()
  // The other tab types for a while, then stops; this one goes on heartbeating, reporting the same old input.
  for (let i = 0; i < 5; i++) {
    typing.tab.send({ type: 'activity', at: Date.now() })
    heartbeating.tab.send({ type: 'heartbeat', lastInputAt })
    await new Promise((r) => setTimeout(r, 200))
  }
  const beats = setInterval(() => heartbeating.tab.send({ type: 'heartbeat', lastInputAt }), 250)
  t.teardown(() => clearInterval(beats))
  for (const { tab } of [typing, heartbeating]) {
    t.match(await tab.type('session.idle', 8000), { seq: 1 }, 'the session goes idle')
    t.match(await tab.type('session.expired', 8000), { reason: 'idle_timeout' }, 'and expires')
    t.equal((await tab.closed).code, 4002)
  }
})

t.test('a session found past its timeout gets session.expired only, with no idle or warning first', async (t) => {
  const app = await build(t) // no worker yet: the session goes past its deadline unseen
  await app.user('ada')
  await shortTimeouts(app, { idleAfterSeconds: 1, idleTimeoutSeconds: 3, idleWarningSeconds: 1 })
  const ada = await app.client().signIn('ada')
  const { tab } = await openTab(await listen(app), ada.sid!, { tabId: 'A' })
  const quietSince = Date.now() - 10_000
  await app.ctx.database.sql`update sessions set last_activity = ${new Date(quietSince)} where id = ${ada.sessionId!}`
  await app.resources.redis.hset(app.ctx.keys.sessionPresence(ada.sessionId!), 'lastActivity', quietSince)
  await app.resources.redis.zadd(app.ctx.keys.deadlines(ada.sessionId!).active, quietSince, ada.sessionId!)
  await app.ctx.queues.all.cleanup.pause() // it would end the session first (PostgreSQL knows it is quiet): this is about the sweep
  const workers = await startWorkers(app)
  t.teardown(() => workers.close())
  t.match(await tab.type('session.expired', 10_000), { reason: 'idle_timeout', seq: 1 }, 'the first and only event is the expiry')
  t.equal((await tab.closed).code, 4002)
  t.same(
    tab.logged().map((m) => m.type),
    ['session.expired'],
  )
})

t.test('a warning lead longer than the time from idle to expiry: the warning still comes idleWarningSeconds before expiry, before session.idle', async (t) => {
  const app = await build(t, {}, { workers: true })
  await app.user('ada')
  // Idle after 3 s, expiry at 5 s: a 4 s warning is due at 1 s, before the session is idle.
  await shortTimeouts(app, { idleAfterSeconds: 3, idleTimeoutSeconds: 5, idleWarningSeconds: 4 })
  const ada = await app.client().signIn('ada')
  const { tab } = await openTab(await listen(app), ada.sid!, { tabId: 'A' })
  const expired = await tab.type('session.expired', 15_000)
  t.match(expired, { reason: 'idle_timeout' })
  const [warning, idle] = tab.logged()
  t.match(warning, { type: 'session.idle_warning', seq: 1, expiresAt: String, secondsLeft: Number }, 'the warning comes first')
  t.match(idle, { type: 'session.idle', seq: 2, lastActivity: String }, 'then session.idle')
  t.equal(Date.parse(warning!.expiresAt as string), Date.parse(idle!.lastActivity as string) + 5000, 'the warning names the expiry: last activity + idle timeout')
  t.ok((warning!.secondsLeft as number) > 0 && (warning!.secondsLeft as number) <= 4, `it came ahead of the expiry (${warning!.secondsLeft} s left)`)
  t.equal(expired.seq, 3, 'then the expiry, and nothing else')
})

t.test('many sessions due in one tick are all told, and a session input moves on gets nothing', async (t) => {
  const app = await build(t, { LOGIN_RATE_LIMIT: '1000/min' })
  await shortTimeouts(app, { idleAfterSeconds: 2, idleTimeoutSeconds: 60, idleWarningSeconds: 0 })
  const address = await listen(app)
  const tabs = []
  for (let i = 0; i < 30; i++) {
    await app.user(`user${i}`)
    const c = await app.client().signIn(`user${i}`)
    tabs.push((await openTab(address, c.sid!, { tabId: 'A' })).tab)
  }
  await new Promise((r) => setTimeout(r, 2200)) // all due, no worker yet
  tabs[0]!.send({ type: 'activity', at: Date.now() })
  await new Promise((r) => setTimeout(r, 300))
  const workers = await startWorkers(app)
  t.teardown(() => workers.close())
  for (const tab of tabs.slice(1)) t.match(await tab.type('session.idle', 10_000), { seq: 1 })
  const idledByTicks = async () =>
    (await app.ctx.queues.all.idleSweep.getJobs(['completed'], 0, 100)).flatMap((j) => (j.returnvalue as { sweeps?: { idled: number }[] } | null)?.sweeps ?? []).map((s) => s.idled)
  t.ok(await until('the tick to complete', async () => (await idledByTicks()).includes(29)), 'one sweep idled all 29')
  t.notOk(tabs[0]!.messages.some((m) => m.type === 'session.idle'), 'the session with fresh input is not idle')
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
  await app.resources.redis.zadd(app.ctx.keys.deadlines(ada.sessionId!).lifetime, end.getTime(), ada.sessionId!)
  const stop = Date.now() + 1200
  while (Date.now() < stop) {
    tab.send({ type: 'activity', at: Date.now() })
    await new Promise((r) => setTimeout(r, 200))
  }
  t.match(await tab.type('session.expired', 5000), { reason: 'lifetime' })
  t.equal((await tab.closed).code, 4002)
})
