import t from 'tap'
import { ADMIN_PASSWORD, build } from '../helpers/app.js'
import { listen, openTab } from '../helpers/ws.js'

const IPHONE = { 'user-agent': 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Version/17.0 Mobile/15E148 Safari/604.1' }

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
  t.match((await ada.get('/api/session_state')).json(), { error: { code: 'SESSION_TERMINATED', reason: 'admin' } })
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
  t.equal((await admin.get('/admin/sessions/not-a-uuid')).statusCode, 404)
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
    { username: 'ada', success: true, flags: [] },
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
