// Frames outside the event log (lock broadcasts, user notices, the admin feed) that reach a
// tab while it syncs (its hello, a refill, a catch-up) are sent once it is live, not dropped.
import t from 'tap'
import { ADMIN_PASSWORD, build, testDatabaseUrl, testRedisUrl } from '../helpers/app.js'
import { isSubscriber, subscribes, TcpProxy } from '../helpers/tcp-proxy.js'
import { sleep, until } from '../helpers/wait.js'
import { connect, listen, type Message, openTab } from '../helpers/ws.js'

t.test('lock broadcasts and user notices that arrive during a hello come after its welcome', async (t) => {
  // issue 12, defect 7: the tab dropped them while it was syncing.
  const postgres = await TcpProxy.to(t, testDatabaseUrl('postgres'))
  const app = await build(t, {}, { via: { postgres } })
  const { id: userId } = await app.user('ada')
  const address = await listen(app)
  const first = await app.client().signIn('ada')
  const second = await app.client().signIn('ada')
  const witness = (await openTab(address, second.sid!, { tabId: 'W' })).tab // live all along
  const tab = await connect(address, { cookie: `sid=${first.sid}` })

  const held = postgres.hold(() => true)
  tab.send({ type: 'hello', tabId: 'A', view: '/' })
  await held
  await until('the hello has joined', () => app.hub.tabsOf(first.sessionId!).length === 1)
  t.equal(app.hub.tabsOf(first.sessionId!)[0]!.state, 'syncing', 'the tab is in its hello')

  const owner = { sessionId: second.sessionId, userId, username: 'ada' }
  await app.ctx.bus.publishBroadcast({ type: 'lock.acquired', resource: 'doc:1', owner })
  await app.ctx.bus.publishUserEvent(userId, { type: 'user.notice', kind: 'new_login', sessionId: 'a-third-session', device: null, ip: null })
  await witness.type('user.notice') // the node has handed both to its tabs
  postgres.release()

  await tab.type('welcome')
  const welcomeAt = tab.messages.findIndex((m) => m.type === 'welcome')
  const after = (type: string) => tab.next((m: Message) => m.type === type, 5000, welcomeAt + 1)
  t.match(await after('lock.acquired'), { resource: 'doc:1', owner })
  t.match(await after('user.notice'), { kind: 'new_login', sessionId: 'a-third-session' })
  t.same(
    tab.messages.map((m) => m.type),
    ['welcome', 'lock.acquired', 'user.notice'],
    'after the welcome, in the order they came',
  )
})

t.test('an admin delta produced while the admin tab catches up reaches it afterwards', async (t) => {
  // issue 12, defect 7: the delta was dropped and the feed recorded it as sent, so the
  // new session never appeared on that socket.
  const redis = await TcpProxy.to(t, testRedisUrl())
  const app = await build(t, { ADMIN_FEED_INTERVAL_MS: '100' }, { via: { redis } })
  await app.user('ada')
  const address = await listen(app)
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  const { tab } = await openTab(address, admin.sid!, { tabId: 'admin', view: '/admin' })
  tab.send({ type: 'admin.subscribe' })
  await tab.type('admin.snapshot')

  // The node's subscriber reconnects; its re-SUBSCRIBE is held, so the catch-up waits.
  const resubscribing = redis.hold((pipe, chunk) => isSubscriber(pipe) && subscribes(app.ctx.keys.sessionChannel(admin.sessionId!))(pipe, chunk))
  t.equal(redis.drop(isSubscriber), 1)
  await resubscribing
  await until('the admin tab is catching up', () => app.hub.tabsOf(admin.sessionId!)[0]?.state === 'syncing')

  const ada = await app.client().signIn('ada')
  await sleep(1000) // ten feed ticks: the delta for ada is produced while the tab syncs
  redis.release()
  const delta = await tab.next((m) => m.type === 'admin.delta' && (m.upserted as { id: string }[]).some((v) => v.id === ada.sessionId), 10_000)
  t.match(delta, { upserted: [{ id: ada.sessionId, username: 'ada' }] }, 'the new session shows on the admin socket')
})
