import t from 'tap'
import { ADMIN_PASSWORD, build } from '../helpers/app.js'
import { listen, openTab } from '../helpers/ws.js'

t.test('an admin socket gets a snapshot, then deltas for logins, endings and visible changes only', async (t) => {
  const app = await build(t, { ADMIN_FEED_INTERVAL_MS: '100' })
  await app.user('ada')
  const address = await listen(app)
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  const { tab } = await openTab(address, admin.sid!, { tabId: 'admin', view: '/admin' })
  tab.send({ type: 'admin.subscribe' })
  const snapshot = await tab.type('admin.snapshot')
  t.match(snapshot, { total: 1, sessions: [{ username: 'admin', currentView: '/admin', tabs: 1 }], at: String })

  const ada = await app.client().signIn('ada')
  const added = await tab.next((m) => m.type === 'admin.delta' && (m.upserted as { username: string }[]).some((v) => v.username === 'ada'))
  t.match(added, { upserted: [{ id: ada.sessionId, username: 'ada', status: 'active', tabs: 0 }], removed: [] })

  const adaTab = await openTab(address, ada.sid!, { tabId: 'A', view: '/inbox' })
  t.match(await tab.next((m) => m.type === 'admin.delta' && JSON.stringify(m).includes('/inbox')), { upserted: [{ id: ada.sessionId, currentView: '/inbox', tabs: 1 }] })

  // Heartbeats that change nothing visible send nothing.
  const before = tab.messages.length
  for (let i = 0; i < 1000; i++) adaTab.tab.send({ type: 'heartbeat', view: '/inbox' })
  adaTab.tab.send({ type: 'ping', id: 'done' })
  await adaTab.tab.next((m) => m.id === 'done')
  await new Promise((r) => setTimeout(r, 400))
  t.equal(tab.messages.length, before, 'no delta for 1,000 heartbeats that change nothing')

  await ada.post('/api/auth/logout')
  t.match(await tab.next((m) => m.type === 'admin.delta' && (m.removed as unknown[]).length > 0), { removed: [{ id: ada.sessionId, reason: 'logout' }], upserted: [] })
})

t.test('the feed honours its filter', async (t) => {
  const app = await build(t, { ADMIN_FEED_INTERVAL_MS: '100' })
  await app.user('ada')
  await app.user('rita', { role: 'reviewer' })
  const address = await listen(app)
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  const { tab } = await openTab(address, admin.sid!, { tabId: 'admin' })
  tab.send({ type: 'admin.subscribe', filter: { role: 'reviewer' } })
  t.match(await tab.type('admin.snapshot'), { sessions: [], total: 0 })
  await app.client().signIn('ada')
  const rita = await app.client().signIn('rita')
  const delta = await tab.type('admin.delta')
  t.same(
    (delta.upserted as { id: string }[]).map((v) => v.id),
    [rita.sessionId],
  )
  tab.send({ type: 'admin.unsubscribe' })
  tab.send({ type: 'ping', id: 'x' })
  await tab.next((m) => m.id === 'x')
  const count = tab.messages.length
  await app.client().signIn('rita')
  await new Promise((r) => setTimeout(r, 400))
  t.equal(tab.messages.length, count, 'nothing after unsubscribe')
})

t.test('changing idleAfterSeconds sends config.changed to every open tab', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const address = await listen(app)
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  const ada = await app.client().signIn('ada')
  const { tab } = await openTab(address, ada.sid!, { tabId: 'A' })
  t.equal((await admin.put('/admin/sessions/config', { idleAfterSeconds: 120 })).statusCode, 200)
  t.match(await tab.type('config.changed'), { heartbeatIntervalMs: 30000, idleAfterMs: 120000 })
  const count = tab.messages.length
  await admin.put('/admin/sessions/config', { idleWarningSeconds: 30 })
  tab.send({ type: 'ping', id: 'p' })
  await tab.next((m) => m.id === 'p')
  t.equal(tab.messages.filter((m) => m.type === 'config.changed').length, 1, 'other settings do not concern tabs')
  t.ok(tab.messages.length >= count)
})

t.test('a role change applies to live sockets: a demoted admin loses the feed, a promoted user gains it', async (t) => {
  const app = await build(t, { ADMIN_FEED_INTERVAL_MS: '100' })
  const ada = await app.user('ada')
  const root = await app.user('root', { role: 'admin' })
  const address = await listen(app)
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  const adaClient = await app.client().signIn('ada')
  const rootClient = await app.client().signIn('root')
  const adaTab = (await openTab(address, adaClient.sid!, { tabId: 'A' })).tab
  const rootTab = (await openTab(address, rootClient.sid!, { tabId: 'R' })).tab
  rootTab.send({ type: 'admin.subscribe' })
  await rootTab.type('admin.snapshot')
  await admin.patch(`/admin/users/${root.id}`, { role: 'user' })
  t.match(await rootTab.type('error'), { code: 'FORBIDDEN' }, 'the demoted admin is told and dropped')
  await admin.patch(`/admin/users/${ada.id}`, { role: 'admin' })
  adaTab.send({ type: 'admin.subscribe' })
  t.ok(await adaTab.type('admin.snapshot'), 'the promoted user gets the feed on the same socket')
})

t.test('idle and active flips show in the feed', async (t) => {
  const app = await build(t, { ADMIN_FEED_INTERVAL_MS: '100' }, { workers: true })
  await app.user('ada')
  await app.ctx.settings.update({ idleAfterSeconds: 1, idleTimeoutSeconds: 60, idleWarningSeconds: 0 }, 1)
  const address = await listen(app)
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  const ada = await app.client().signIn('ada')
  const adaTab = (await openTab(address, ada.sid!, { tabId: 'A' })).tab
  const { tab } = await openTab(address, admin.sid!, { tabId: 'admin' })
  tab.send({ type: 'admin.subscribe', filter: { user: 'ada' } })
  await tab.type('admin.snapshot')
  const isAda = (status: string) => (m: { type: string; upserted?: unknown }) =>
    m.type === 'admin.delta' && (m.upserted as { id: string; status: string }[]).some((v) => v.id === ada.sessionId && v.status === status)
  t.ok(await tab.next(isAda('idle'), 8000), 'the session shows as idle')
  adaTab.send({ type: 'activity', at: Date.now() })
  t.ok(await tab.next(isAda('active'), 8000), 'and active again after input')
})
