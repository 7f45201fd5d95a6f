import t from 'tap'
import { CLOSE } from '../../src/realtime/protocol.js'
import { build, PASSWORD } from '../helpers/app.js'
import { listen, openTab } from '../helpers/ws.js'

async function streamEvents(app: Awaited<ReturnType<typeof build>>, sessionId: string) {
  const entries = await app.resources.redis.xrange(app.ctx.keys.sessionLog(sessionId), '-', '+')
  return entries.map(([, fields]) => JSON.parse(fields[1]!))
}

t.test('logout ends the session for every tab, clears the cookie and logs session.logged_out', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  const sessionId = ada.sessionId!
  const address = await listen(app)
  // Two open tabs of the browser: A signs out, B hears of it.
  const tabs = [(await openTab(address, ada.sid!, { tabId: 'tab-a' })).tab, (await openTab(address, ada.sid!, { tabId: 'tab-b' })).tab]
  const tabB = app.client()
  tabB.sid = ada.sid
  const res = await ada.post('/api/auth/logout', undefined, { 'x-tab-id': 'tab-a' })
  t.equal(res.statusCode, 204)
  t.match(res.headers['set-cookie'], /sid=;/)
  for (const [i, tab] of tabs.entries()) {
    t.match(await tab.type('session.logged_out'), { type: 'session.logged_out', byTabId: 'tab-a', seq: 1 }, `tab ${'ab'[i]} is told`)
    t.equal((await tab.closed).code, CLOSE.loggedOut, `and tab ${'ab'[i]} is closed with 4003`)
  }
  const after = await tabB.get('/api/session_state')
  t.equal(after.statusCode, 401)
  t.match(after.json(), { error: { code: 'SESSION_TERMINATED', reason: 'logout' } })
  t.match(after.headers['set-cookie'], /sid=;/, 'a refused ended token clears the cookie')
  t.match(await streamEvents(app, sessionId), [{ type: 'session.logged_out', byTabId: 'tab-a', seq: 1, at: String }])
  const [row] = await app.ctx.database.sql`select status, end_reason, ended_at from sessions where id = ${sessionId}`
  t.match(row, { status: 'ended', end_reason: 'logout', ended_at: Date })
  const audit = await app.ctx.database.sql`select type, data from audit_events where session_id = ${sessionId} and type like 'session.%' and type <> 'session.view' order by id`
  t.match(audit, [{ type: 'session.login' }, { type: 'session.ended', data: { reason: 'logout' } }])
})

t.test('logout-all ends every session of the user, this one included', async (t) => {
  const app = await build(t)
  await app.user('ada')
  await app.user('bob')
  const phone = await app.client().signIn('ada')
  const laptop = await app.client().signIn('ada')
  const bob = await app.client().signIn('bob')
  const laptopToken = laptop.sid
  const res = await laptop.post('/api/auth/logout-all', { reason: 'lost my phone' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { terminatedSessions: 2 })
  t.equal(laptop.sid, undefined, 'the response clears the cookie')
  laptop.sid = laptopToken
  for (const c of [phone, laptop]) t.match((await c.get('/api/session_state')).json(), { error: { code: 'SESSION_TERMINATED', reason: 'logout_all' } })
  t.equal((await bob.get('/api/session_state')).statusCode, 200, 'other users keep their sessions')
  t.match(await streamEvents(app, phone.sessionId!), [{ type: 'session.terminated', reason: 'logout_all', message: String, note: 'lost my phone' }])
})

t.test('GET /api/auth/csrf returns the session’s token', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  const res = await ada.get('/api/auth/csrf')
  t.equal(res.statusCode, 200)
  t.equal(res.json().csrfToken, ada.csrf)
  t.equal((await app.client().get('/api/auth/csrf')).statusCode, 401)
})

t.test('state-changing requests need the session’s CSRF token', async (t) => {
  const app = await build(t)
  await app.user('ada', { platforms: ['A', 'B'] })
  await app.user('bob')
  const ada = await app.client().signIn('ada')
  const bob = await app.client().signIn('bob')
  const routes: [string, string][] = [
    ['POST', '/api/auth/logout'],
    ['POST', '/api/auth/logout-all'],
    ['POST', '/api/switch_platform/1'],
    ['POST', '/api/platforms'],
    ['DELETE', '/api/platforms/1'],
    ['POST', '/api/session/cleanup'],
    ['DELETE', `/api/sessions/${ada.sessionId}`],
    ['POST', '/api/auth/password'],
  ]
  for (const [method, url] of routes) {
    for (const [label, token] of [
      ['missing', undefined],
      ['wrong', 'x'.repeat(43)],
      ["another session's", bob.csrf!],
    ] as const) {
      const headers: Record<string, string> = token === undefined ? { 'x-csrf-token': '' } : { 'x-csrf-token': token }
      const res = await ada.request(method as 'POST', url, method === 'DELETE' ? undefined : {}, headers)
      t.equal(res.statusCode, 403, `${method} ${url} with ${label} token`)
      t.equal(res.json().error.code, 'CSRF_INVALID')
    }
  }
  t.equal((await ada.get('/api/session_state')).statusCode, 200, 'nothing was changed')
})

t.test('a state-changing request from a foreign Origin is refused', async (t) => {
  const app = await build(t, { ALLOWED_ORIGINS: 'https://app.example.com' })
  await app.user('ada', { platforms: ['A', 'B'] })
  const ada = await app.client().signIn('ada')
  const [, second] = (await ada.get('/api/platforms')).json().items
  const evil = await ada.post(`/api/switch_platform/${second.id}`, {}, { origin: 'https://evil.example' })
  t.equal(evil.statusCode, 403)
  t.equal(evil.json().error.code, 'ORIGIN_NOT_ALLOWED')
  t.equal((await ada.post(`/api/switch_platform/${second.id}`, {}, { origin: 'https://app.example.com' })).statusCode, 200)
  t.equal((await ada.get('/api/session_state', { origin: 'https://evil.example' })).statusCode, 200, 'reads are not state-changing')
})

t.test('changing the password ends the other sessions and keeps this one', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const here = await app.client().signIn('ada')
  const there = await app.client().signIn('ada')
  const wrong = await here.post('/api/auth/password', { currentPassword: 'nope-nope-nope', newPassword: 'a-new-long-password' })
  t.equal(wrong.statusCode, 401)
  t.equal(wrong.json().error.code, 'INVALID_CREDENTIALS')
  for (const weak of ['short', 'ada', 'ADA']) {
    const res = await here.post('/api/auth/password', { currentPassword: PASSWORD, newPassword: weak })
    t.equal(res.statusCode, 400, weak)
    t.equal(res.json().error.code, 'WEAK_PASSWORD')
  }
  t.equal((await there.get('/api/session_state')).statusCode, 200, 'failed attempts change nothing')
  const ok = await here.post('/api/auth/password', { currentPassword: PASSWORD, newPassword: 'a-new-long-password' })
  t.equal(ok.statusCode, 204)
  t.match((await there.get('/api/session_state')).json(), { error: { code: 'SESSION_TERMINATED', reason: 'password_changed' } })
  t.equal((await here.get('/api/session_state')).statusCode, 200)
  t.equal((await app.client().login('ada', PASSWORD)).statusCode, 401, 'the old password no longer works')
  t.equal((await app.client().login('ada', 'a-new-long-password')).statusCode, 200)
})

t.test('the API is rate limited per session', async (t) => {
  const app = await build(t, { API_RATE_LIMIT: '5/min' })
  await app.user('ada')
  await app.user('bob')
  const ada = await app.client().signIn('ada')
  const bob = await app.client().signIn('bob')
  const codes: number[] = []
  for (let i = 0; i < 6; i++) codes.push((await ada.get('/api/platforms')).statusCode)
  t.same(codes, [200, 200, 200, 200, 200, 429])
  const limited = await ada.get('/api/platforms')
  t.match(limited.json(), { error: { code: 'RATE_LIMITED', retryAfterSeconds: Number } })
  t.ok(Number(limited.headers['retry-after']) > 0)
  t.equal((await bob.get('/api/platforms')).statusCode, 200, 'another session has its own budget')
  t.equal((await app.client().get('/healthz')).statusCode, 200, 'health checks are never limited')
})
