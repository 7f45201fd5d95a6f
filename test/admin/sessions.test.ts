import t from 'tap'
import { ADMIN_PASSWORD, build, Client, PASSWORD, type TestApp } from '../helpers/app.js'
import { listen, openTab } from '../helpers/ws.js'

const IPHONE = { 'user-agent': 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Version/17.0 Mobile/15E148 Safari/604.1' }
const FIREFOX = { 'user-agent': 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0' }

/** Signs in from a given client IP; returns a Client holding that session's cookie. */
async function signInFrom(app: TestApp, username: string, ip: string, headers: Record<string, string> = {}): Promise<Client> {
  const res = await app.app.inject({
    method: 'POST',
    url: '/api/auth/login',
    payload: { username, password: PASSWORD },
    remoteAddress: ip,
    headers: { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0 Safari/537.36', ...headers },
  })
  if (res.statusCode !== 200) throw new Error(`sign-in of ${username} from ${ip} failed: ${res.body}`)
  const client = new Client(app.app, headers)
  client.sid = res.cookies.find((c) => c.name === 'sid')!.value
  client.csrf = res.json().csrfToken
  client.sessionId = res.json().session.id
  return client
}

const idsOf = (res: { json(): { items: { id: string }[] } }) => res.json().items.map((v) => v.id)

t.test('GET /admin/sessions lists live sessions with filters, sort, paging and total', async (t) => {
  const app = await build(t)
  await app.user('ada')
  await app.user('bob')
  await app.user('rita', { role: 'reviewer' })
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  const ada = await app.client().signIn('ada')
  await app.client(IPHONE).signIn('ada')
  const bob = await app.client().signIn('bob')
  await app.client().signIn('rita')
  await bob.post('/api/auth/logout')

  const all = await admin.get('/admin/sessions')
  t.equal(all.statusCode, 200)
  t.equal(all.json().total, 4, 'ended sessions are not listed')
  t.match(all.json().items[0], { username: 'admin' }, 'most recently active first')
  t.same(
    (await admin.get('/admin/sessions?user=ada')).json().items.map((v: { id: string }) => v.id).includes(ada.sessionId),
    true,
  )
  t.equal((await admin.get('/admin/sessions?user=ada')).json().total, 2)
  t.equal((await admin.get('/admin/sessions?role=reviewer')).json().total, 1)
  t.equal((await admin.get('/admin/sessions?q=safari')).json().total, 1, 'q searches the browser')
  t.equal((await admin.get('/admin/sessions?status=idle')).json().total, 0)
  const byName = (await admin.get('/admin/sessions?sort=username&order=asc')).json().items.map((v: { username: string }) => v.username)
  t.same(byName, ['ada', 'ada', 'admin', 'rita'])
  const page1 = (await admin.get('/admin/sessions?sort=username&limit=3')).json()
  t.equal(page1.items.length, 3)
  t.type(page1.nextCursor, 'string')
  const page2 = (await admin.get(`/admin/sessions?sort=username&limit=3&cursor=${page1.nextCursor}`)).json()
  t.same(page2.items.map((v: { username: string }) => v.username), ['rita'])
  t.equal(page2.nextCursor, null)
  for (const bad of ['limit=0', 'limit=501', 'sort=password', 'order=up', 'status=gone', 'cursor=%%%', 'extra=1']) {
    const res = await admin.get(`/admin/sessions?${bad}`)
    t.equal(res.statusCode, 400, bad)
    t.equal(res.json().error.code, 'VALIDATION_FAILED')
  }
})

t.test('force terminate reaches the user’s tabs on another node, with the admin’s reason', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const one = await listen(app)
  const other = await app.node()
  const two = await listen(other)
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  const ada = await app.client().signIn('ada')
  const tab = await openTab(two, ada.sid!, { tabId: 'A' })
  void one
  const res = await admin.delete(`/admin/sessions/${ada.sessionId}`, { reason: 'Suspicious activity' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { terminated: true })
  t.match(await tab.tab.type('session.terminated'), { reason: 'admin', message: 'Session terminated by administrator', note: 'Suspicious activity' })
  t.equal((await tab.tab.closed).code, 4001)
  t.match((await ada.get('/api/session_state')).json(), { error: { code: 'SESSION_TERMINATED', reason: 'admin', note: 'Suspicious activity' } })
  const again = await admin.delete(`/admin/sessions/${ada.sessionId}`, { reason: 'again' })
  t.equal(again.statusCode, 409)
  t.equal(again.json().error.code, 'SESSION_ALREADY_ENDED')
  t.equal((await admin.delete('/admin/sessions/00000000-0000-4000-8000-000000000000', { reason: 'x' })).statusCode, 404)
  t.equal((await admin.delete(`/admin/sessions/${ada.sessionId}`, {})).statusCode, 400, 'a reason is required')
  t.equal((await admin.delete(`/admin/sessions/${ada.sessionId}`, { reason: '' })).statusCode, 400)
  const [audit] = await app.ctx.database.sql`select actor_user_id, data from audit_events where session_id = ${ada.sessionId!} and type = 'session.ended'`
  t.match(audit, { actor_user_id: 1, data: { reason: 'admin', note: 'Suspicious activity' } })

  const detail = await admin.get(`/admin/sessions/${ada.sessionId}`)
  t.equal(detail.statusCode, 200)
  t.match(detail.json(), { id: ada.sessionId, status: 'ended', endReason: 'admin', endedBy: 1, endNote: 'Suspicious activity', endedAt: String, fingerprint: String, flags: [] })
  const timeline = (await admin.get(`/admin/sessions/${ada.sessionId}/timeline`)).json().items
  t.same(
    timeline.map((e: { type: string }) => e.type),
    ['session.login', 'session.view', 'session.ended'],
  )
  t.equal((await admin.get('/admin/sessions/not-a-uuid')).statusCode, 400)
  t.equal((await admin.get('/admin/sessions/00000000-0000-4000-8000-000000000000/timeline')).statusCode, 404)
})

t.test('login history and audit are filterable and paged; non-admins get 403 everywhere', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  await app.client().login('ada', 'wrong-password')
  const ada = await app.client().signIn('ada')
  await app.client(IPHONE).signIn('ada')
  const history = await admin.get('/admin/sessions/history?user=ada')
  t.equal(history.statusCode, 200)
  t.match(history.json().items, [
    { username: 'ada', success: true, flags: ['new_device'], method: 'password', ip: '127.0.0.1' },
    { username: 'ada', success: true, flags: ['new_device'] },
    { username: 'ada', success: false, reason: 'wrong_password' },
  ])
  t.equal((await admin.get('/admin/sessions/history?user=ada&success=false')).json().items.length, 1)
  const p1 = (await admin.get('/admin/sessions/history?limit=2')).json()
  const p2 = (await admin.get(`/admin/sessions/history?limit=2&cursor=${p1.nextCursor}`)).json()
  t.equal(p1.items.length + p2.items.length, 4)
  t.equal(p2.nextCursor, null)
  t.equal((await admin.get('/admin/sessions/history?from=2030-01-01T00:00:00Z')).json().items.length, 0)
  t.equal((await admin.get('/admin/sessions/history?from=yesterday')).statusCode, 400)
  const [session] = (await admin.get(`/admin/sessions?user=ada&sort=loginAt&order=desc`)).json().items
  t.match((await admin.get(`/admin/sessions/${session.id}`)).json(), { flags: ['new_device'] })

  const audit = await admin.get(`/admin/audit?session=${ada.sessionId}`)
  t.match(audit.json().items, [{ type: 'session.login', sessionId: ada.sessionId }])
  t.equal((await admin.get('/admin/audit?type=session.login&user=ada')).json().items.length, 2)
  t.equal((await admin.get('/admin/audit?user=nobody')).json().items.length, 0)

  for (const url of ['/admin/sessions', `/admin/sessions/${ada.sessionId}`, `/admin/sessions/${ada.sessionId}/timeline`, '/admin/sessions/history', '/admin/audit']) {
    const res = await ada.get(url)
    t.equal(res.statusCode, 403, url)
    t.equal(res.json().error.code, 'FORBIDDEN')
  }
  t.equal((await ada.delete(`/admin/sessions/${ada.sessionId}`, { reason: 'x' })).statusCode, 403)
})

t.test('the timeline replays a session: login, views, switches, idle/active, end', async (t) => {
  const app = await build(t, {}, { workers: true })
  const { platformIds } = await app.user('ada', { platforms: ['A', 'B'] })
  await app.ctx.settings.update({ idleAfterSeconds: 1, idleTimeoutSeconds: 60, idleWarningSeconds: 0 }, 1)
  const address = await listen(app)
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  const ada = await app.client().signIn('ada')
  const { tab } = await openTab(address, ada.sid!, { tabId: 'A', view: '/inbox' })
  tab.send({ type: 'view', view: '/compose' })
  // A ping is answered after the view is recorded: the switch comes after it.
  tab.send({ type: 'ping', id: 'after-view' })
  await tab.next((m) => m.type === 'pong' && m.id === 'after-view')
  await ada.post(`/api/switch_platform/${platformIds[1]}`)
  await tab.type('session.idle', 5000)
  tab.send({ type: 'activity', at: Date.now() })
  await tab.type('session.active')
  await ada.post('/api/auth/logout')
  await tab.closed
  let types: string[] = []
  for (let i = 0; i < 50 && !types.includes('locks.released') && !types.includes('session.ended'); i++) {
    types = (await admin.get(`/admin/sessions/${ada.sessionId}/timeline`)).json().items.map((e: { type: string }) => e.type)
    await new Promise((r) => setTimeout(r, 100))
  }
  t.same(types, ['session.login', 'session.view', 'session.view', 'platform.switched', 'session.idle', 'session.active', 'session.ended'])
})

t.test('GET /admin/sessions: ip, status, user by id, role and the other sorts', async (t) => {
  const app = await build(t)
  const ada = await app.user('ada')
  await app.user('rita', { role: 'reviewer' })
  const address = await listen(app)
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  const adaLaptop = await signInFrom(app, 'ada', '10.1.1.1')
  const adaPhone = await signInFrom(app, 'ada', '10.2.2.2', IPHONE)
  const rita = await signInFrom(app, 'rita', '10.1.1.1', FIREFOX)
  await openTab(address, adaPhone.sid!, { tabId: 'P1' }, { headers: IPHONE })
  await openTab(address, adaPhone.sid!, { tabId: 'P2' }, { headers: IPHONE })
  await openTab(address, rita.sid!, { tabId: 'R1' }, { headers: FIREFOX })

  t.same((await admin.get('/admin/sessions?ip=10.1.1.1&sort=username')).json().items.map((v: { username: string }) => v.username), ['ada', 'rita'], 'ip')
  t.same(idsOf(await admin.get('/admin/sessions?ip=10.2.2.2')), [adaPhone.sessionId])
  t.equal((await admin.get('/admin/sessions?ip=10.9.9.9')).json().total, 0)
  t.equal((await admin.get('/admin/sessions?status=active')).json().total, 4, 'every session is active')
  t.same(idsOf(await admin.get(`/admin/sessions?user=${ada.id}&sort=loginAt`)), [adaLaptop.sessionId, adaPhone.sessionId], 'user by numeric id')
  t.same(idsOf(await admin.get('/admin/sessions?user=ADA&sort=loginAt')), [adaLaptop.sessionId, adaPhone.sessionId], 'user by name, any case')

  const byActivity = idsOf(await admin.get('/admin/sessions?sort=lastActivity&order=desc'))
  // The admin's own request is activity too.
  t.same(byActivity.slice(0, 2), [admin.sessionId, rita.sessionId], 'lastActivity, most recent first')
  t.same(idsOf(await admin.get('/admin/sessions?sort=lastActivity')), [...byActivity].reverse(), 'and ascending')
  const byTabs = (await admin.get('/admin/sessions?sort=tabs&order=desc')).json().items.map((v: { id: string; tabs: number }) => [v.id, v.tabs])
  t.same(byTabs.slice(0, 2), [
    [adaPhone.sessionId, 2],
    [rita.sessionId, 1],
  ])
  const byDevice = (await admin.get('/admin/sessions?sort=device')).json().items.map((v: { device: { browser: string } }) => v.device.browser)
  t.same(byDevice, ['Chrome 140', 'Chrome 140', 'Firefox 128', 'Mobile Safari 17'], 'device: browser, os, type')

  for (const bad of ['role=wizard', 'role=Admin', 'sort=device.browser']) {
    const res = await admin.get(`/admin/sessions?${bad}`)
    t.equal(res.statusCode, 400, bad)
    t.equal(res.json().error.code, 'VALIDATION_FAILED', bad)
  }

  const live = await admin.get(`/admin/sessions/${adaPhone.sessionId}`)
  t.equal(live.statusCode, 200)
  t.match(live.json(), {
    id: adaPhone.sessionId,
    userId: ada.id,
    username: 'ada',
    status: 'active',
    tabs: 2,
    currentView: '/',
    ip: '10.2.2.2',
    device: { browser: 'Mobile Safari 17', os: 'iOS', type: 'mobile' },
    endedAt: null,
    endReason: null,
    endedBy: null,
    endNote: null,
    flags: ['new_device'],
    expiresAt: String,
  })
})

t.test('admin session ids: a malformed id is 400, an upper-case one works; reasons are trimmed and bounded', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  const ada = await app.client().signIn('ada')
  const upper = ada.sessionId!.toUpperCase()

  for (const [method, url, body] of [
    ['GET', '/admin/sessions/not-a-uuid'],
    ['GET', '/admin/sessions/12345/timeline'],
    ['DELETE', '/admin/sessions/not-a-uuid', { reason: 'x' }],
    ['GET', `/admin/sessions/urn:uuid:${ada.sessionId}`],
  ] as const) {
    const res = await admin.request(method, url, body as Record<string, unknown> | undefined)
    t.equal(res.statusCode, 400, `${method} ${url}`)
    t.equal(res.json().error.code, 'VALIDATION_FAILED')
    t.match(res.json().error.message, /params\.id/)
  }
  const detail = await admin.get(`/admin/sessions/${upper}`)
  t.equal(detail.statusCode, 200, 'an upper-case id names the same session')
  t.equal(detail.json().id, ada.sessionId)
  t.equal((await admin.get(`/admin/sessions/${upper}/timeline`)).json().items[0].type, 'session.login')

  for (const [what, reason] of [
    ['only spaces', '   '],
    ['only a tab and a newline', '\t\n'],
    ['over 500 characters', 'x'.repeat(501)],
  ] as const) {
    const res = await admin.delete(`/admin/sessions/${upper}`, { reason })
    t.equal(res.statusCode, 400, what)
    t.equal(res.json().error.code, 'VALIDATION_FAILED', what)
    t.match(res.json().error.message, /reason/, what)
  }
  t.equal((await ada.get('/api/session_state')).statusCode, 200, 'a refused termination ends nothing')
  t.equal((await admin.delete(`/admin/sessions/${upper}`, { reason: `  ${'y'.repeat(500)}` })).statusCode, 400, 'the limit counts the given text')
  const ok = await admin.delete(`/admin/sessions/${upper}`, { reason: '  Left a shared computer signed in  ' })
  t.equal(ok.statusCode, 200)
  t.match((await admin.get(`/admin/sessions/${ada.sessionId}`)).json(), { status: 'ended', endReason: 'admin', endNote: 'Left a shared computer signed in' })
  t.equal((await admin.delete(`/admin/sessions/${upper}`, { reason: 'again' })).statusCode, 409)
})

t.test('force terminate on another node also releases the user’s locks, announced to every tab', async (t) => {
  const app = await build(t, {}, { workers: true })
  await app.user('ada')
  await app.user('bob')
  const other = await app.node()
  const two = await listen(other)
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  const ada = await app.client().signIn('ada')
  const bob = await app.client().signIn('bob')
  const adaTab = (await openTab(two, ada.sid!, { tabId: 'A' })).tab
  const bobTab = (await openTab(two, bob.sid!, { tabId: 'B' })).tab
  for (const resource of ['doc:1', 'doc:2']) t.equal((await ada.post('/api/locks', { resource })).statusCode, 201)

  t.equal((await admin.delete(`/admin/sessions/${ada.sessionId}`, { reason: 'Left for the day' })).statusCode, 200)
  t.match(await adaTab.type('session.terminated'), { reason: 'admin', note: 'Left for the day' })
  t.equal((await adaTab.closed).code, 4001)
  const released = await bobTab.next((m) => m.type === 'locks.released' && m.sessionId === ada.sessionId, 15_000)
  t.same([...(released.resources as string[])].sort(), ['doc:1', 'doc:2'])
  t.equal(released.reason, 'admin')
  t.same(await app.ctx.database.sql`select resource from locks`, [], 'no lock is left')
  t.equal((await bob.post('/api/locks', { resource: 'doc:1' })).statusCode, 201, 'another user can take the lock now')
})

t.test('history filters to and ip and flags multiple_ips; audit filters from and to', async (t) => {
  const app = await build(t, { ANOMALY_DISTINCT_IPS: '2' })
  await app.user('ada')
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  await signInFrom(app, 'ada', '10.0.0.1')
  const between = new Date()
  await new Promise((r) => setTimeout(r, 20))
  await signInFrom(app, 'ada', '10.0.0.2')

  const history = (url: string) => admin.get(`/admin/sessions/history?user=ada&${url}`)
  const second = (await history('ip=10.0.0.2')).json().items
  t.match(second, [{ ip: '10.0.0.2', success: true }])
  t.equal(second.length, 1)
  t.ok(second[0].flags.includes('multiple_ips'), 'a second IP within the window is flagged multiple_ips')
  t.ok(second[0].flags.includes('new_device'), 'and new_device')
  t.same((await history('ip=10.0.0.1')).json().items.map((a: { flags: string[] }) => a.flags), [['new_device']], 'the first sign-in is from a new device too')
  t.same((await history(`to=${between.toISOString()}`)).json().items.map((a: { ip: string }) => a.ip), ['10.0.0.1'], 'to')
  t.same((await history(`from=${between.toISOString()}`)).json().items.map((a: { ip: string }) => a.ip), ['10.0.0.2'], 'from')
  t.equal((await admin.get('/admin/sessions/history?from=2030-01-01T00:00:00Z&to=2029-01-01T00:00:00Z')).statusCode, 400, 'a reversed range')
  const [attempt] = second
  const [flagged] = (await admin.get(`/admin/sessions?user=ada&ip=10.0.0.2`)).json().items
  t.match((await admin.get(`/admin/sessions/${flagged.id}`)).json().flags, attempt.flags, 'the session carries the same flags')

  const audit = (url: string) => admin.get(`/admin/audit?type=session.login&user=ada&${url}`)
  t.equal((await audit(`to=${between.toISOString()}`)).json().items.length, 1, 'audit to')
  t.match((await audit(`from=${between.toISOString()}`)).json().items, [{ type: 'session.login', data: { ip: '10.0.0.2' } }], 'audit from')
  t.equal((await audit('from=2030-01-01T00:00:00Z')).json().items.length, 0)
  t.equal((await admin.get('/admin/audit?from=soon')).statusCode, 400)
  for (const session of ['not-a-uuid', `urn:uuid:${flagged.id}`]) t.equal((await admin.get(`/admin/audit?session=${session}`)).statusCode, 400, session)
  t.equal((await admin.get(`/admin/audit?session=${flagged.id.toUpperCase()}`)).json().items.length, 1, 'an upper-case session id')
})
