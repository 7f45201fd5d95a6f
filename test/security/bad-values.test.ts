// Bad values (http.md, Conventions; realtime.md): a NUL character, an unpaired UTF-16
// surrogate or an integer past the safe range in any body field, query value, path
// parameter or WebSocket message field is refused with the field named, and nothing is
// written. Before, each reached PostgreSQL and came back as 500 INTERNAL or closed the
// socket with 1011.
import t from 'tap'
import { ADMIN_PASSWORD, build, PASSWORD, type TestApp } from '../helpers/app.js'
import { listen, openTab } from '../helpers/ws.js'

const NUL = 'a\u0000b'
const LONE = 'a\ud800b'

/** Row counts of every table a refused request could have written to. */
async function written(app: TestApp) {
  const [row] = await app.ctx.database.sql`select
      (select count(*) from users)::int as users,
      (select count(*) from platforms)::int as platforms,
      (select count(*) from sessions)::int as sessions,
      (select count(*) from login_attempts)::int as attempts,
      (select count(*) from audit_events)::int as audit,
      (select count(*) from locks)::int as locks,
      (select version from settings limit 1)::int as settings`
  return row
}

t.test('HTTP: NUL, lone surrogates and unsafe integers are 400 VALIDATION_FAILED naming the field, and nothing is written', async (t) => {
  const app = await build(t)
  await app.user('ada', { platforms: ['Home'] })
  const ada = await app.client().signIn('ada')
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  const anon = app.client()
  const before = await written(app)
  const cases: [ReturnType<TestApp['client']>, 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', string, Record<string, unknown> | undefined, string][] = [
    [anon, 'POST', '/api/auth/login', { username: NUL, password: PASSWORD }, 'body.username'],
    [anon, 'POST', '/api/auth/login', { username: LONE, password: PASSWORD }, 'body.username'],
    [anon, 'POST', '/api/auth/login', { username: 'ada', password: `${PASSWORD}\u0000` }, 'body.password'],
    [ada, 'POST', '/api/platforms', { name: NUL, type: 'mastodon', instanceUrl: 'https://m.example' }, 'body.name'],
    [ada, 'POST', '/api/platforms', { name: LONE, type: 'mastodon', instanceUrl: 'https://m.example' }, 'body.name'],
    [ada, 'POST', '/api/locks', { resource: NUL }, 'body.resource'],
    [ada, 'POST', '/api/locks', { resource: 'doc\udc00' }, 'body.resource'],
    [ada, 'DELETE', '/api/locks/doc%00x', undefined, 'params.resource'],
    [ada, 'GET', '/api/locks?prefix=%00', undefined, 'querystring.prefix'],
    [ada, 'POST', '/api/auth/logout-all', { reason: LONE }, 'body.reason'],
    [ada, 'POST', '/api/switch_platform/1', { expectedVersion: 1e20 }, 'body.expectedVersion'],
    [admin, 'DELETE', `/admin/sessions/${ada.sessionId}`, { reason: NUL }, 'body.reason'],
    [admin, 'DELETE', `/admin/sessions/${ada.sessionId}`, { reason: LONE }, 'body.reason'],
    [admin, 'GET', '/admin/sessions?user=%00', undefined, 'querystring.user'],
    [admin, 'GET', '/admin/sessions?q=a%00', undefined, 'querystring.q'],
    [admin, 'GET', '/admin/sessions/history?ip=%00', undefined, 'querystring.ip'],
    [admin, 'GET', '/admin/audit?user=99999999999999999999', undefined, 'querystring.user'],
    [admin, 'GET', '/admin/audit?type=%00', undefined, 'querystring.type'],
    // Times RFC 3339 allows but JavaScript or PostgreSQL cannot hold (found by the fuzzer: 500).
    [admin, 'GET', '/admin/sessions/analytics?to=0000-01-01T00:00:00Z', undefined, 'querystring.to'],
    [admin, 'GET', '/admin/sessions/analytics?from=2020-12-31T23:59:60Z', undefined, 'querystring.from'],
    [admin, 'GET', '/admin/sessions/history?from=0000-06-01T00:00:00Z', undefined, 'querystring.from'],
    [admin, 'PUT', '/admin/sessions/config', { concurrentLimits: { byUser: { '4\u00002': 1 } } }, 'body.concurrentLimits.byUser'],
    [admin, 'PUT', '/admin/sessions/config', { idleWarningSeconds: 1e20 }, 'body.idleWarningSeconds'],
    [admin, 'POST', '/admin/users', { username: NUL, email: 'x@example.com', password: PASSWORD, role: 'user' }, 'body.username'],
    [admin, 'PATCH', '/admin/users/2', { email: `a${LONE}@example.com` }, 'body.email'],
  ]
  for (const [client, method, url, body, field] of cases) {
    const res = await client.request(method, url, body)
    const what = `${method} ${url} ${JSON.stringify(body) ?? ''}`
    t.equal(res.statusCode, 400, what)
    t.equal(res.json().error?.code, 'VALIDATION_FAILED', what)
    t.match(res.json().error?.message, field, `${what}: the message names ${field}`)
  }
  t.same(await written(app), before, 'no row was written or changed')
  t.equal((await ada.get('/api/session_state')).statusCode, 200, "ada's session is untouched")
})

t.test('WebSocket: the same values are BAD_MESSAGE naming the field; the socket stays open and nothing is stored', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  const address = await listen(app)

  // Before hello: a bad hello is refused, and a good one still works on the same socket.
  const { connect } = await import('../helpers/ws.js')
  const early = await connect(address, { cookie: `sid=${ada.sid}` })
  for (const [hello, field] of [
    [{ tabId: NUL, view: '/' }, 'tabId'],
    [{ tabId: 'tab', view: LONE }, 'view'],
    [{ tabId: 'tab', view: '/', lastSeq: 1e20 }, 'lastSeq'],
  ] as const) {
    const from = early.messages.length
    early.send({ type: 'hello', ...hello })
    const error = await early.next((m) => m.type === 'error', 5000, from)
    t.equal(error.code, 'BAD_MESSAGE')
    t.match(error.message, field, `hello with a bad ${field}`)
  }
  early.send({ type: 'hello', tabId: 'early', view: '/' })
  await early.type('welcome')

  const { tab } = await openTab(address, ada.sid!, { tabId: 'tab-1', view: '/start' })
  const { tab: adminTab } = await openTab(address, admin.sid!, { tabId: 'admin-1' })
  const cases: [typeof tab, Record<string, unknown>, string][] = [
    [tab, { type: 'view', view: NUL }, 'view'],
    [tab, { type: 'heartbeat', view: LONE }, 'view'],
    [tab, { type: 'heartbeat', lastInputAt: 1e20 }, 'lastInputAt'],
    [tab, { type: 'activity', at: 1e300 }, 'at'],
    [tab, { type: 'ping', id: NUL }, 'id'],
    [tab, { type: 'ping', id: 1e20 }, 'id'],
    [adminTab, { type: 'admin.subscribe', filter: { user: NUL } }, 'filter.user'],
    [adminTab, { type: 'admin.subscribe', filter: { q: LONE } }, 'filter.q'],
  ]
  for (const [socket, message, field] of cases) {
    const from = socket.messages.length
    socket.send(message)
    const error = await socket.next((m) => m.type === 'error', 5000, from)
    t.equal(error.code, 'BAD_MESSAGE', JSON.stringify(message))
    t.match(error.message, field, `${JSON.stringify(message)}: the message names ${field}`)
  }
  // Still open and served: a ping is answered after the bad messages.
  tab.send({ type: 'ping', id: 'after' })
  t.equal((await tab.next((m) => m.type === 'pong')).id, 'after')
  const detail = await admin.get(`/admin/sessions/${ada.sessionId}`)
  t.equal(detail.json().currentView, '/start', 'the bad view was not stored')
  await tab.close()
  await adminTab.close()
  await early.close()
})

t.test('a malformed multipart body is 400 VALIDATION_FAILED, not 500 (found by the HTTP fuzzer)', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  for (const payload of [' ', '--x\r\n', 'garbage', '--x\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n\r\n%PDF-1.4 cut short']) {
    const res = await ada.request('POST', '/api/session/uploads', undefined, { 'content-type': 'multipart/form-data; boundary=x' })
    t.equal(res.statusCode, 400, 'no body at all')
    const cut = await app.app.inject({
      method: 'POST',
      url: '/api/session/uploads',
      payload,
      headers: { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0 Safari/537.36', cookie: `sid=${ada.sid}`, 'x-csrf-token': ada.csrf!, 'content-type': 'multipart/form-data; boundary=x' },
    })
    t.equal(cut.statusCode, 400, JSON.stringify(payload))
    t.equal(cut.json().error.code, 'VALIDATION_FAILED', JSON.stringify(payload))
  }
  t.equal((await ada.get('/api/session/uploads')).json().items.length, 0, 'nothing was stored')
})

t.test('a body of the wrong type, or with a prototype key, is refused with words that say what to send', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  for (const type of ['application/xml', 'application/x-www-form-urlencoded', 'text/html']) {
    const res = await ada.request('POST', '/api/auth/logout-all', undefined, { 'content-type': type })
    t.equal(res.statusCode, 415, type)
    t.match(res.json().error, { code: 'UNSUPPORTED_MEDIA_TYPE', message: /application\/json/ })
  }
  const upload = await ada.request('POST', '/api/session/uploads', undefined, { 'content-type': 'text/html' })
  t.equal(upload.statusCode, 415)
  t.match(upload.json().error.message, /multipart\/form-data/, 'the upload route names its own type')
  for (const body of ['{"__proto__":{"x":1}}', '{"a":{"constructor":{"prototype":{}}}}']) {
    const res = await app.app.inject({ method: 'POST', url: '/api/auth/login', headers: { 'content-type': 'application/json' }, payload: body })
    t.equal(res.statusCode, 400, body)
    t.match(res.json().error, { code: 'BAD_REQUEST', message: /__proto__/ })
  }
  const broken = await app.app.inject({ method: 'POST', url: '/api/auth/login', headers: { 'content-type': 'application/json' }, payload: '{"a":' })
  t.equal(broken.statusCode, 400)
  t.notMatch(broken.json().error.message, /__proto__/, 'JSON that does not parse is still called so')
})
