// Races around hello (issue 3, bugs 1, 2 and 6): what happens between the upgrade and the
// welcome must never leave a tab live after its session ended, skip an event, or leave a
// ghost of a closed socket in presence. PostgreSQL and Redis traffic is held back at the
// right moment by a real TCP proxy (test/helpers/tcp-proxy.ts); nothing is mocked.
import t from 'tap'
import { build, type Client, testRedisUrl } from '../helpers/app.js'
import { isSubscriber, subscribes, TcpProxy } from '../helpers/tcp-proxy.js'
import { connect, listen } from '../helpers/ws.js'
import { sleep, until } from '../helpers/wait.js'

t.test('a session that ends between the upgrade and hello: the tab learns why, is closed and never counted', async (t) => {
  // Bug 1: the tab's "ended" was fixed at the upgrade, so it was welcomed as live, with its
  // baseline past the terminal event, subscribed and in presence, after the logout.
  const app = await build(t)
  await app.user('ada')
  const address = await listen(app)
  for (const resume of [{}, { lastSeq: 0 }]) {
    const ada = await app.client().signIn('ada')
    const sessionId = ada.sessionId!
    const tab = await connect(address, { cookie: `sid=${ada.sid}` })
    t.equal((await ada.post('/api/auth/logout', undefined, { 'x-tab-id': 'other' })).statusCode, 204)
    tab.send({ type: 'hello', tabId: 'A', view: '/', ...resume })
    t.match(await tab.type('session.logged_out'), { seq: 1, byTabId: 'other', at: String }, `hello ${JSON.stringify(resume)}: the terminal event`)
    t.equal((await tab.closed).code, 4003, 'then close 4003')
    t.notOk(
      tab.messages.some((m) => m.type === 'welcome'),
      'never welcomed',
    )
    t.same(app.hub.tabsOf(sessionId), [], 'the node keeps no tab of the session')
    t.equal(await app.resources.redis.zcard(app.ctx.keys.sessionTabs(sessionId)), 0, 'presence never counted it')
  }
})

t.test('a second tab whose hello comes while the first one’s SUBSCRIBE is in flight misses nothing', async (t) => {
  // Bug 2: only the first tab of a session on a node waited for the SUBSCRIBE; the second one
  // read the seq before the node heard the channel, and an event in between was lost.
  const redis = await TcpProxy.to(t, testRedisUrl())
  const app = await build(t, {}, { via: { redis } })
  const { platformIds } = await app.user('ada', { platforms: ['P0', 'P1'] })
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const switchTo = async (client: Client, id: number) => t.equal((await client.post(`/api/switch_platform/${id}`)).statusCode, 200)
  const a = await connect(address, { cookie: `sid=${ada.sid}` })
  const b = await connect(address, { cookie: `sid=${ada.sid}` })

  const channel = app.ctx.keys.sessionChannel(ada.sessionId!)
  const held = redis.hold((pipe, chunk) => isSubscriber(pipe) && subscribes(channel)(pipe, chunk))
  a.send({ type: 'hello', tabId: 'A', view: '/' })
  await held
  b.send({ type: 'hello', tabId: 'B', view: '/' })
  // Give tab B every chance to be welcomed (as it was before the fix) before the event.
  await Promise.race([b.type('welcome', 1000).catch(() => {}), sleep(1000)])
  await switchTo(ada, platformIds[1]!) // seq 1, while Redis has not taken the SUBSCRIBE yet
  redis.release()
  const welcomes = await Promise.all([a.type('welcome'), b.type('welcome')])
  await switchTo(ada, platformIds[0]!) // seq 2
  for (const [i, tab] of [a, b].entries()) {
    await tab.next((m) => m.seq === 2)
    const from = welcomes[i]!.seq as number
    t.same(
      tab.logged().map((m) => m.seq),
      Array.from({ length: 2 - from }, (_, k) => from + 1 + k),
      `tab ${'AB'[i]}: every event after its welcome baseline (${from}), no gap`,
    )
  }
})

t.test('a tab that closes during its hello leaves no ghost, and its queued messages are dropped', async (t) => {
  // Bug 6: presence and the view were written for a socket that had closed meanwhile, and
  // messages queued behind the hello were still handled after the close.
  const redis = await TcpProxy.to(t, testRedisUrl())
  const app = await build(t, {}, { via: { redis } })
  await app.user('ada')
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const sessionId = ada.sessionId!
  const before = await app.ctx.store.hotLastActivity(sessionId)
  const tab = await connect(address, { cookie: `sid=${ada.sid}` })

  // The hello's one step in Redis (the seq, and the tab in presence) names the tabs key: it is held.
  const tabsKey = app.ctx.keys.sessionTabs(sessionId)
  const held = redis.hold((pipe, chunk) => !isSubscriber(pipe) && chunk.includes(tabsKey))
  tab.send({ type: 'hello', tabId: 'ghost', view: '/ghost' })
  tab.send({ type: 'activity', at: Date.now() })
  tab.send({ type: 'view', view: '/ghost-2' })
  await held
  await until('the hello has joined', () => app.hub.tabsOf(sessionId).length === 1)
  await tab.close()
  await until('the node has seen the close', () => app.hub.size === 0)
  redis.release()
  await sleep(1000) // nothing may happen now; give it the time to go wrong

  t.equal(await app.resources.redis.zcard(tabsKey), 0, 'not in presence')
  t.equal(await app.ctx.store.hotLastActivity(sessionId), before, 'the queued activity was not recorded')
  const views = await app.resources.database.sql`select data from audit_events where type = 'session.view' and session_id = ${sessionId}`
  t.same(views, [], 'no view recorded for it')
  t.equal((await ada.get('/api/session_state')).json().session.tabs, 0)
})

t.test('messages queued behind the hello of an ended session are not handled after it closed', async (t) => {
  // Bug 6, second half: for a tab that only learns why its session ended, an `activity`
  // behind its hello ran recordInput on the ended session after the socket was closed.
  const app = await build(t)
  await app.user('ada')
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const sid = ada.sid!
  await ada.post('/api/auth/logout')
  const before = await app.ctx.store.hotLastActivity(ada.sessionId!)
  await sleep(20)
  const tab = await connect(address, { cookie: `sid=${sid}` })
  tab.send({ type: 'hello', tabId: 'A', view: '/' })
  tab.send({ type: 'activity', at: Date.now() })
  tab.send({ type: 'heartbeat', lastInputAt: Date.now(), view: '/elsewhere' })
  t.match(await tab.type('session.logged_out'), { seq: 1 })
  t.equal((await tab.closed).code, 4003)
  await sleep(500)
  t.equal(await app.ctx.store.hotLastActivity(ada.sessionId!), before, 'the ended session shows no new input')
  t.equal(await app.resources.redis.zcard(app.ctx.keys.sessionTabs(ada.sessionId!)), 0, 'and no tab')
})
