// The admin live feed (realtime.md, "Admin live feed"; issue 5): a snapshot, then coalesced
// deltas only for visible changes, on every node's admin sockets.
import t from 'tap'
import { ADMIN_PASSWORD, build } from '../helpers/app.js'
import { spawnTessera } from '../helpers/process.js'
import { type Message, openTab, listen, type TabClient } from '../helpers/ws.js'
import { sleep } from '../helpers/wait.js'

type Row = { id: string; username: string; status: string; tabs: number; currentView: string | null; role: string }

const upserts = (m: Message) => (m.type === 'admin.delta' ? (m.upserted as Row[]) : [])
const removals = (m: Message) => (m.type === 'admin.delta' ? (m.removed as { id: string; reason: string }[]) : [])
/** The next delta that upserts session `id` with a row matching `match`. */
function upsertOf(tab: TabClient, id: string, match: (row: Row) => boolean = () => true, ms = 8000) {
  return tab.next((m) => upserts(m).some((r) => r.id === id && match(r)), ms)
}

/** Waits until `tab` has handled everything sent before (messages are handled in order). */
async function settled(tab: TabClient, id: string) {
  tab.send({ type: 'ping', id })
  await tab.next((m) => m.type === 'pong' && m.id === id, 30_000)
}

async function adminFeed(address: string, sid: string, filter?: Record<string, unknown>) {
  const { tab } = await openTab(address, sid, { tabId: `admin-${Math.random()}`, view: '/admin' })
  tab.send(filter ? { type: 'admin.subscribe', filter } : { type: 'admin.subscribe' })
  const snapshot = await tab.type('admin.snapshot')
  return { tab, snapshot }
}

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
  const added = await tab.next((m) => upserts(m).some((v) => v.username === 'ada'))
  t.match(added, { upserted: [{ id: ada.sessionId, username: 'ada', status: 'active', tabs: 0 }], removed: [] })

  await openTab(address, ada.sid!, { tabId: 'A', view: '/inbox' })
  t.match(await upsertOf(tab, ada.sessionId!, (r) => r.currentView === '/inbox'), { upserted: [{ id: ada.sessionId, currentView: '/inbox', tabs: 1 }] })

  await ada.post('/api/auth/logout')
  t.match(await tab.next((m) => removals(m).length > 0), { removed: [{ id: ada.sessionId, reason: 'logout' }], upserted: [] })
})

t.test('a login appears and an admin DELETE disappears on an admin socket of another node', async (t) => {
  const app = await build(t, { ADMIN_FEED_INTERVAL_MS: '100' })
  await app.user('ada')
  const other = await app.node()
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  const { tab } = await adminFeed(await listen(other), admin.sid!)

  const ada = await app.client().signIn('ada') // through the first node
  t.match(await upsertOf(tab, ada.sessionId!), { upserted: [{ id: ada.sessionId, username: 'ada', status: 'active' }], removed: [] })
  t.equal((await admin.delete(`/admin/sessions/${ada.sessionId}`, { reason: 'Shared account' })).statusCode, 200)
  const gone = await tab.next((m) => removals(m).some((r) => r.id === ada.sessionId))
  t.same(removals(gone), [{ id: ada.sessionId, reason: 'admin' }])
})

t.test('1,000 heartbeats send no delta, with or without lastInputAt; the next visible change does', async (t) => {
  const app = await build(t, { ADMIN_FEED_INTERVAL_MS: '100' })
  await app.user('ada')
  const address = await listen(app)
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  const ada = await app.client().signIn('ada')
  const adaTab = (await openTab(address, ada.sid!, { tabId: 'A', view: '/inbox' })).tab
  const { tab } = await adminFeed(address, admin.sid!)
  // Whatever the hello announced has been sent before we start counting.
  await sleep(400)

  for (const [what, heartbeat] of [
    ['plain', () => ({ type: 'heartbeat', view: '/inbox' })],
    ['with lastInputAt', () => ({ type: 'heartbeat', view: '/inbox', lastInputAt: Date.now() })],
  ] as const) {
    const before = tab.messages.length
    for (let i = 0; i < 1000; i++) adaTab.send(heartbeat())
    await settled(adaTab, what)
    await sleep(500)
    t.equal(tab.messages.length, before, `no delta for 1,000 heartbeats (${what})`)
  }
  const from = tab.messages.length
  adaTab.send({ type: 'view', view: '/compose' })
  const next = await tab.next(() => true, 8000, from)
  t.match(next, { type: 'admin.delta', upserted: [{ id: ada.sessionId, currentView: '/compose' }], removed: [] }, 'the first message after them is the view change')
})

t.test('tab count and view changes show; a second filter is served on the same node', async (t) => {
  const app = await build(t, { ADMIN_FEED_INTERVAL_MS: '100' })
  await app.user('ada')
  const address = await listen(app)
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  const ada = await app.client().signIn('ada')
  const { tab } = await adminFeed(address, admin.sid!)
  const { tab: adaOnly, snapshot } = await adminFeed(address, admin.sid!, { user: 'ada' })
  t.same(
    (snapshot.sessions as Row[]).map((r) => r.id),
    [ada.sessionId],
  )
  const id = ada.sessionId!

  const first = (await openTab(address, ada.sid!, { tabId: 'A', view: '/inbox' })).tab
  for (const feed of [tab, adaOnly]) t.ok(await upsertOf(feed, id, (r) => r.tabs === 1 && r.currentView === '/inbox'), 'one tab')
  const second = (await openTab(address, ada.sid!, { tabId: 'B', view: '/inbox' })).tab
  t.ok(await upsertOf(tab, id, (r) => r.tabs === 2), 'a second tab')
  second.send({ type: 'view', view: '/settings' })
  t.ok(await upsertOf(tab, id, (r) => r.currentView === '/settings'), 'a view message')
  first.send({ type: 'heartbeat', view: '/search' })
  t.ok(await upsertOf(tab, id, (r) => r.currentView === '/search'), 'a heartbeat that names a new view')
  await second.close()
  t.ok(await upsertOf(tab, id, (r) => r.tabs === 1), 'a tab closed')
  t.notOk(
    adaOnly.messages.some((m) => upserts(m).some((r) => r.username !== 'ada')),
    'the filtered feed shows only its user',
  )
})

t.test('with 600 sessions, a change of one outside the snapshot window is upserted and pushes nothing out', async (t) => {
  const app = await build(t, { ADMIN_FEED_INTERVAL_MS: '100' }, { workers: true })
  await app.user('ada')
  const bob = await app.user('bob')
  await app.ctx.settings.update({ idleAfterSeconds: 1, idleTimeoutSeconds: 3600, idleWarningSeconds: 0 }, 1)
  const address = await listen(app)
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  const ada = await app.client().signIn('ada')
  const adaTab = (await openTab(address, ada.sid!, { tabId: 'A', view: '/inbox' })).tab
  await adaTab.type('session.idle', 10_000)
  // 600 sessions ahead of ada in the list: their last activity lies in the future, so they
  // stay active and first by last activity whatever the clock does during the test.
  await app.ctx.database.sql`
    insert into sessions (id, user_id, token_hash, expires_at, last_activity, ip)
    select gen_random_uuid(), ${bob.id}, md5(random()::text) || md5(random()::text), now() + interval '1 day',
           now() + interval '1 hour' + g * interval '1 second', '10.0.0.9'
    from generate_series(1, 600) g`

  const { tab, snapshot } = await adminFeed(address, admin.sid!)
  t.equal(snapshot.total, 602, 'total counts every live session')
  t.equal((snapshot.sessions as Row[]).length, 500, 'the snapshot holds the first 500')
  t.notOk(
    (snapshot.sessions as Row[]).some((r) => r.id === ada.sessionId),
    'ada, the least recently active, is outside the window',
  )

  adaTab.send({ type: 'activity', at: Date.now() })
  await adaTab.type('session.active')
  // The same delta may carry other rows too: the admin's own session goes idle a second after its last request.
  const delta = await upsertOf(tab, ada.sessionId!, (r) => r.status === 'active')
  t.match(
    upserts(delta).find((r) => r.id === ada.sessionId),
    { status: 'active', tabs: 1 },
    'ada is upserted, active with her one tab',
  )
  await sleep(6000) // past one reconcile of the full list
  await settled(tab, 'done')
  t.same(tab.messages.flatMap(removals), [], 'nothing was removed: every session is still live')
})

t.test('idle and active flips show in the feed', async (t) => {
  const app = await build(t, { ADMIN_FEED_INTERVAL_MS: '100' }, { workers: true })
  await app.user('ada')
  await app.ctx.settings.update({ idleAfterSeconds: 1, idleTimeoutSeconds: 60, idleWarningSeconds: 0 }, 1)
  const address = await listen(app)
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  const ada = await app.client().signIn('ada')
  const adaTab = (await openTab(address, ada.sid!, { tabId: 'A' })).tab
  const { tab } = await adminFeed(address, admin.sid!, { user: 'ada' })
  t.ok(await upsertOf(tab, ada.sessionId!, (r) => r.status === 'idle'), 'the session shows as idle')
  adaTab.send({ type: 'activity', at: Date.now() })
  t.ok(await upsertOf(tab, ada.sessionId!, (r) => r.status === 'active'), 'and active again after input')
})

t.test('the feed honours its filter: rows that stop matching are removed as filtered', async (t) => {
  const app = await build(t, { ADMIN_FEED_INTERVAL_MS: '100' })
  const ada = await app.user('ada')
  await app.user('rita', { role: 'reviewer' })
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  const { tab, snapshot } = await adminFeed(await listen(app), admin.sid!, { role: 'reviewer' })
  t.match(snapshot, { sessions: [], total: 0 })
  const adaClient = await app.client().signIn('ada')
  const rita = await app.client().signIn('rita')
  const delta = await upsertOf(tab, rita.sessionId!)
  t.same(
    upserts(delta).map((v) => v.id),
    [rita.sessionId],
  )
  await admin.patch(`/admin/users/${ada.id}`, { role: 'reviewer' })
  t.match(await upsertOf(tab, adaClient.sessionId!), { upserted: [{ id: adaClient.sessionId, role: 'reviewer' }] }, 'a promoted user enters the filter')
  await admin.patch(`/admin/users/${ada.id}`, { role: 'user' })
  const out = await tab.next((m) => removals(m).some((r) => r.id === adaClient.sessionId))
  t.same(removals(out), [{ id: adaClient.sessionId, reason: 'filtered' }], 'and leaves it as filtered when demoted again')

  tab.send({ type: 'admin.unsubscribe' })
  await settled(tab, 'x')
  const count = tab.messages.length
  await app.client().signIn('rita')
  await sleep(400)
  t.equal(tab.messages.length, count, 'nothing after unsubscribe')
})

t.test('feed filters are validated like GET /admin/sessions, and user takes a name or an id', async (t) => {
  const app = await build(t, { ADMIN_FEED_INTERVAL_MS: '100' })
  const ada = await app.user('ada')
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  const adaClient = await app.client().signIn('ada')
  const { tab } = await openTab(await listen(app), admin.sid!, { tabId: 'admin' })
  for (const filter of [{ sort: 'password' }, { role: 'wizard' }, { order: 'up' }, { limit: 0 }, { bogus: 1 }]) {
    const from = tab.messages.length
    tab.send({ type: 'admin.subscribe', filter })
    t.match(await tab.next(() => true, 5000, from), { type: 'error', code: 'BAD_MESSAGE' }, JSON.stringify(filter))
  }
  tab.send({ type: 'admin.subscribe', filter: { user: String(ada.id), sort: 'tabs', order: 'desc' } })
  const snapshot = await tab.type('admin.snapshot')
  t.same(
    (snapshot.sessions as Row[]).map((r) => r.id),
    [adaClient.sessionId],
    'a numeric user filter names the account by id',
  )
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
  await admin.put('/admin/sessions/config', { idleWarningSeconds: 30 })
  await admin.put('/admin/sessions/config', { idleAfterSeconds: 120 })
  await settled(tab, 'p')
  t.equal(tab.messages.filter((m) => m.type === 'config.changed').length, 1, 'other settings, and an unchanged value, do not concern tabs')
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

t.test('a tab that vanishes without a close (its node killed) leaves the feed by the reconcile', async (t) => {
  const env = { ADMIN_FEED_INTERVAL_MS: '100', WS_PING_INTERVAL_SECONDS: '1' }
  const app = await build(t, env)
  await app.user('ada')
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  const ada = await app.client().signIn('ada')
  const doomed = await spawnTessera(t, app, { ROLE: 'api', ...env })
  const adaTab = (await openTab(new URL(doomed.url).host, ada.sid!, { tabId: 'A', view: '/inbox' })).tab
  const { tab } = await adminFeed(await listen(app), admin.sid!, { user: 'ada' })
  t.match(tab.messages.find((m) => m.type === 'admin.snapshot'), { sessions: [{ id: ada.sessionId, tabs: 1 }] })

  await doomed.stop('SIGKILL')
  await adaTab.closed
  // Nobody announces this: the tab's presence fades and the slow reconcile shows it.
  t.match(await upsertOf(tab, ada.sessionId!, (r) => r.tabs === 0, 30_000), { upserted: [{ id: ada.sessionId, tabs: 0 }] })
})
