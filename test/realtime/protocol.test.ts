import t from 'tap'
import WebSocket from 'ws'
import { build } from '../helpers/app.js'
import { connect, listen, openTab, TabClient } from '../helpers/ws.js'

t.test('upgrades are refused without a session (401) or from a foreign Origin (403)', async (t) => {
  const app = await build(t, { ALLOWED_ORIGINS: 'https://app.example.com' })
  await app.user('ada')
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const status = (p: Promise<unknown>) => p.then(() => 101, (e: { status?: number }) => e.status)
  t.equal(await status(connect(address)), 401, 'no cookie')
  t.equal(await status(connect(address, { cookie: 'sid=forged' })), 401, 'unknown token')
  const foreign = await connect(address, { cookie: `sid=${ada.sid}`, origin: 'https://evil.example' }).catch((e) => e)
  t.equal(foreign.status, 403)
  t.match(JSON.parse(foreign.body), { error: { code: 'ORIGIN_NOT_ALLOWED' } })
  t.ok(await connect(address, { cookie: `sid=${ada.sid}`, origin: 'https://app.example.com' }), 'an allowed origin connects')
  t.ok(await connect(address, { cookie: `sid=${ada.sid}`, origin: `http://${address}` }), 'same origin connects')
})

t.test('a one-use ticket opens a socket once', async (t) => {
  const app = await build(t, { REALTIME_TICKET_SECONDS: '5' })
  await app.user('ada')
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  t.equal((await ada.post('/api/realtime/ticket', undefined, { 'x-csrf-token': '' })).statusCode, 403, 'needs CSRF')
  const res = await ada.post('/api/realtime/ticket')
  t.equal(res.statusCode, 200)
  const { ticket, expiresAt } = res.json()
  t.ok(Date.parse(expiresAt) - Date.now() <= 5000)
  const tab = await connect(address, { query: `?ticket=${encodeURIComponent(ticket)}`, headers: { 'user-agent': 'native-app/1.0' } })
  tab.send({ type: 'hello', tabId: 'native', view: '/' })
  t.match(await tab.type('welcome'), { sessionId: ada.sessionId })
  const status = (p: Promise<unknown>) => p.then(() => 101, (e: { status?: number }) => e.status)
  t.equal(await status(connect(address, { query: `?ticket=${encodeURIComponent(ticket)}` })), 401, 'a used ticket is refused')
  t.equal(await status(connect(address, { query: '?ticket=not.a.jwt' })), 401, 'a forged ticket is refused')
})

t.test('bad messages get BAD_MESSAGE errors; too many close the socket 4400; others are unaffected', async (t) => {
  const app = await build(t, { WS_MAX_BAD_MESSAGES: '5' })
  const { platformIds } = await app.user('ada', { platforms: ['A', 'B'] })
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const good = await openTab(address, ada.sid!, { tabId: 'good' })
  const { tab } = await openTab(address, ada.sid!, { tabId: 'bad' })
  const bad = ['not json', JSON.stringify({ type: 'teleport' }), JSON.stringify({ type: 'view' }), JSON.stringify({ type: 'heartbeat', view: 7 }), '[1,2,3]']
  for (const [i, frame] of bad.entries()) {
    tab.send(frame)
    if (i < bad.length - 1) t.match(await tab.next((m) => m.type === 'error', 2000, tab.messages.length), { code: 'BAD_MESSAGE', message: String })
  }
  t.equal((await tab.closed).code, 4400)
  await ada.post(`/api/switch_platform/${platformIds[1]}`)
  t.match(await good.tab.type('platform.switched'), { seq: 1 }, 'the other tab still gets its events')
  good.tab.send({ type: 'ping', id: 'p1' })
  t.match(await good.tab.type('pong'), { id: 'p1' })
})

t.test('a first message other than hello is refused; hello twice is refused', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const tab = await connect(address, { cookie: `sid=${ada.sid}` })
  tab.send({ type: 'ping' })
  t.match(await tab.type('error'), { code: 'BAD_MESSAGE', message: /hello/ })
  tab.send({ type: 'hello', tabId: 'A', view: '/' })
  await tab.type('welcome')
  tab.send({ type: 'hello', tabId: 'A', view: '/' })
  t.match(await tab.next((m) => m.type === 'error' && /already/.test(String(m.message))), { code: 'BAD_MESSAGE' })
})

t.test('a frame over WS_MAX_PAYLOAD_BYTES closes the socket 1009', async (t) => {
  const app = await build(t, { WS_MAX_PAYLOAD_BYTES: '1024' })
  await app.user('ada')
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const { tab } = await openTab(address, ada.sid!, { tabId: 'A' })
  tab.send({ type: 'view', view: 'x'.repeat(2000) })
  t.equal((await tab.closed).code, 1009)
  const again = await openTab(address, ada.sid!, { tabId: 'B' })
  t.ok(again.welcome, 'the server keeps serving')
})

t.test('a non-admin asking for the admin feed gets FORBIDDEN', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const { tab } = await openTab(address, ada.sid!, { tabId: 'A' })
  tab.send({ type: 'admin.subscribe' })
  t.match(await tab.type('error'), { code: 'FORBIDDEN' })
  tab.send({ type: 'ping', id: 1 })
  t.match(await tab.type('pong'), { id: 1 }, 'the socket stays open')
})

t.test("a welcome's state counts the session's open tabs with the new one, and not a crashed node's socket", async (t) => {
  const app = await build(t)
  await app.user('ada')
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const first = await openTab(address, ada.sid!, { tabId: 'first' })
  t.match(first.welcome, { state: { session: { tabs: 1, status: 'active' } } })
  const tabs = app.ctx.keys.sessionTabs(ada.sessionId!)
  await app.resources.redis.zadd(tabs, Date.now() - 60_000, 'crashed-node-socket|gone')
  const second = await openTab(address, ada.sid!, { tabId: 'second' })
  t.match(second.welcome, { state: { session: { tabs: 2 } } }, 'first and second; the stale socket is not counted')
  t.equal(await app.resources.redis.zscore(tabs, 'crashed-node-socket|gone'), null, 'and it is dropped')
  const again = await openTab(address, ada.sid!, { tabId: 'second' })
  t.match(again.welcome, { state: { session: { tabs: 2 } } }, 'a tab with two sockets counts once')
})

t.test('a socket silent past two ping intervals is closed 4408 and leaves presence', async (t) => {
  const app = await build(t, { WS_PING_INTERVAL_SECONDS: '1' })
  await app.user('ada')
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const ws = new WebSocket(`ws://${address}/ws`, { headers: { cookie: `sid=${ada.sid}`, origin: 'http://localhost:3000', 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0 Safari/537.36' }, autoPong: false })
  const silent = new TabClient(ws)
  await new Promise((r) => ws.once('open', r))
  silent.send({ type: 'hello', tabId: 'silent', view: '/' })
  await silent.type('welcome')
  const answering = await openTab(address, ada.sid!, { tabId: 'answering' })
  t.equal((await ada.get('/api/session_state')).json().session.tabs, 2)
  t.equal((await silent.closed).code, 4408)
  await new Promise((r) => setTimeout(r, 300))
  t.equal((await ada.get('/api/session_state')).json().session.tabs, 1, 'the silent tab left presence; the answering one stays')
  t.equal(answering.tab.ws.readyState, WebSocket.OPEN)
})

t.test('heartbeats, activity and view changes update presence; a bare heartbeat is not activity', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const { tab } = await openTab(address, ada.sid!, { tabId: 'A', view: '/home' })
  const lastActivity = async () => Date.parse((await ada.get('/api/session_state')).json().session.lastActivity)
  const view = async () => (await ada.get('/api/sessions')).json().items[0].currentView
  t.equal(await view(), '/home')
  const start = await lastActivity()
  tab.send({ type: 'heartbeat' })
  tab.send({ type: 'ping', id: 'sync1' })
  await tab.next((m) => m.id === 'sync1')
  t.equal(await lastActivity(), start, 'a heartbeat without input moves nothing')
  await new Promise((r) => setTimeout(r, 50))
  const inputAt = Date.now() - 10
  tab.send({ type: 'heartbeat', lastInputAt: inputAt, view: '/docs' })
  tab.send({ type: 'ping', id: 'sync2' })
  await tab.next((m) => m.id === 'sync2')
  t.equal(await lastActivity(), inputAt, 'reported input moves last activity')
  t.equal(await view(), '/docs')
  const before = await lastActivity() // (listing your devices above was itself activity)
  tab.send({ type: 'activity', at: inputAt - 100000 })
  tab.send({ type: 'ping', id: 'sync3' })
  await tab.next((m) => m.id === 'sync3')
  t.equal(await lastActivity(), before, 'last activity never moves backwards')
  tab.send({ type: 'view', view: '/settings' })
  tab.send({ type: 'ping', id: 'sync4' })
  await tab.next((m) => m.id === 'sync4')
  t.equal(await view(), '/settings')
  t.ok((await lastActivity()) > before, 'navigating counts as input')
})

t.test('refused upgrades and misbehaving sockets leave an open socket of another session working', async (t) => {
  const app = await build(t, { ALLOWED_ORIGINS: 'https://app.example.com', WS_MAX_PAYLOAD_BYTES: '1024', WS_MAX_BAD_MESSAGES: '3' })
  await app.user('ada')
  await app.user('bob')
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const bob = await app.client().signIn('bob')
  const bystander = await openTab(address, bob.sid!, { tabId: 'bob' })
  const keepUntil = new Date(Date.now() + 3_600_000)
  let seq = 0
  const stillServed = async (after: string) => {
    seq = await app.ctx.bus.publishSessionEvent(bob.sessionId!, { type: 'session.active', lastActivity: new Date().toISOString() }, keepUntil)
    t.match(await bystander.tab.next((m) => m.seq === seq), { type: 'session.active' }, `after ${after}, bob's tab still gets its events`)
  }
  const status = (p: Promise<unknown>) => p.then(() => 101, (e: { status?: number }) => e.status)

  t.equal(await status(connect(address, { cookie: `sid=${ada.sid}`, origin: 'https://evil.example' })), 403)
  await stillServed('a foreign Origin')
  t.equal(await status(connect(address)), 401)
  await stillServed('no cookie')
  const { ticket } = (await ada.post('/api/realtime/ticket')).json()
  const first = await connect(address, { query: `?ticket=${encodeURIComponent(ticket)}` })
  t.equal(await status(connect(address, { query: `?ticket=${encodeURIComponent(ticket)}` })), 401)
  first.ws.close()
  await stillServed('a used ticket')

  const { tab } = await openTab(address, ada.sid!, { tabId: 'ada' })
  for (let i = 0; i < 3; i++) tab.send('{"type":')
  t.equal((await tab.closed).code, 4400)
  await stillServed('bad JSON up to 4400')
  const big = await openTab(address, ada.sid!, { tabId: 'ada' })
  big.tab.send({ type: 'view', view: 'x'.repeat(2000) })
  t.equal((await big.tab.closed).code, 1009)
  await stillServed('an oversized frame')
  t.same(
    bystander.tab.logged().map((m) => m.seq),
    Array.from({ length: seq }, (_, i) => i + 1),
    'every event, in order',
  )
})

const refusal = (p: Promise<unknown>) => p.then(() => ({ status: 101, body: '{}' }), (e: { status: number; body: string }) => e)

t.test('an expired ticket is refused with 401', async (t) => {
  const app = await build(t, { REALTIME_TICKET_SECONDS: '1' })
  await app.user('ada')
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const expired = (await ada.post('/api/realtime/ticket')).json().ticket as string
  await new Promise((r) => setTimeout(r, 2100)) // past its one second (JWT expiry has whole seconds)
  const late = await refusal(connect(address, { query: `?ticket=${encodeURIComponent(expired)}` }))
  t.equal(late.status, 401, 'expired')
  t.match(JSON.parse(late.body), { error: { code: 'UNAUTHENTICATED', message: /ticket is invalid, expired or already used/ } })
})

// With the default lifetime: a one-second ticket can expire (whole seconds) before a loaded
// machine gets from the logout to the upgrade, and then the refusal is for the expiry.
t.test('a ticket of an ended session is refused with 401 and the reason', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const fresh = (await ada.post('/api/realtime/ticket')).json().ticket as string
  await ada.post('/api/auth/logout')
  const ended = await refusal(connect(address, { query: `?ticket=${encodeURIComponent(fresh)}` }))
  t.equal(ended.status, 401, 'its session ended')
  t.match(JSON.parse(ended.body), { error: { code: 'SESSION_TERMINATED', reason: 'logout', message: String } })
})
