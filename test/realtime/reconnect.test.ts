// A node's Redis subscriber drops and reconnects: what was published meanwhile never
// reached it by pub/sub, so its tabs must catch up from the session logs — every missed
// event once, in seq order — and then keep receiving live events.
import type { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { connectRedis } from '../../src/infra/redis.js'
import type { Hub } from '../../src/realtime/hub.js'
import { build, type Client, testDatabaseUrl, testRedisUrl } from '../helpers/app.js'
import { privateRedis } from '../helpers/private-redis.js'
import { isSubscriber, pings, recordsView, subscribes, TcpProxy } from '../helpers/tcp-proxy.js'
import { connect, listen, type Message, openTab } from '../helpers/ws.js'
import { sleep, until } from '../helpers/wait.js'

/** A connection of the test's own, to look at and kill other clients. */
async function inspector(t: Test): Promise<Redis> {
  const redis = await connectRedis(testRedisUrl(), 'tessera-test-inspector')
  t.teardown(() => redis.quit())
  return redis
}

/**
 * The Redis client id of this hub's subscriber. Several test runs share one Redis and every
 * node names its subscriber `tessera-subscriber`, so the name alone is not enough: the
 * connection's own address (its local port) tells this node's apart.
 */
async function subscriberId(redis: Redis, hub: Hub): Promise<string | undefined> {
  const addr = hub.subscriberAddress()
  if (!addr) return undefined
  const list = (await redis.call('CLIENT', 'LIST', 'TYPE', 'pubsub')) as string
  const line = list.split('\n').find((l) => l.includes(` addr=${addr} `) && l.includes(' name=tessera-subscriber '))
  return line ? /^id=(\d+) /.exec(line)?.[1] : undefined
}

/** How many connections are subscribed to a channel right now. */
async function subscribers(redis: Redis, channel: string): Promise<number> {
  const [, n] = (await redis.call('PUBSUB', 'NUMSUB', channel)) as [string, number]
  return Number(n)
}

const seqs = (messages: Message[]) => messages.filter((m) => typeof m.seq === 'number' && m.type !== 'welcome').map((m) => m.seq)
const oneTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1)

t.test('after its subscriber reconnects, a tab gets every missed event once, in order, then live ones', async (t) => {
  const app = await build(t)
  const { platformIds } = await app.user('ada', { platforms: ['P0', 'P1'] })
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const redis = await inspector(t)
  const channel = app.ctx.keys.sessionChannel(ada.sessionId!)
  let turn = 0
  const switchPlatform = async (client: Client) => {
    turn++
    const res = await client.post(`/api/switch_platform/${platformIds[turn % 2]}`, undefined, { 'x-tab-id': 'other' })
    if (res.statusCode !== 200) throw new Error(res.body)
  }

  const { tab } = await openTab(address, ada.sid!, { tabId: 'A' })
  await switchPlatform(ada)
  await switchPlatform(ada)
  await tab.next((m) => m.seq === 2)

  const before = await subscriberId(redis, app.hub)
  t.ok(before, "the node's subscriber is found among the Redis clients")
  t.equal(await subscribers(redis, channel), 1, 'the node is subscribed to the session channel')
  t.equal(await redis.call('CLIENT', 'KILL', 'ID', before!), 1, 'exactly one connection killed')

  // ioredis waits 200 ms before its first reconnect attempt: these switches land in the gap
  // (at least the first, surely; the check after each one says how many did).
  let unheard = 0
  for (let i = 0; i < 3; i++) {
    await switchPlatform(ada)
    if ((await subscribers(redis, channel)) === 0) unheard++
  }
  t.ok(unheard >= 1, `${unheard} of the 3 switches were published while nobody listened`)

  await tab.next((m) => m.seq === 5, 10_000)
  const after = await subscriberId(redis, app.hub)
  t.ok(after && after !== before, 'the subscriber is a new connection')
  t.equal(await subscribers(redis, channel), 1, 'and it subscribed to the session channel again')

  await switchPlatform(ada)
  await tab.next((m) => m.seq === 6)
  const events = tab.messages.filter((m) => m.type === 'platform.switched')
  t.same(seqs(tab.messages), oneTo(6), 'seq 1–6, no gap, no duplicate')
  t.same(
    events.map((m) => m.version),
    [2, 3, 4, 5, 6, 7],
    'each switch once, in the order it happened',
  )
  t.equal(tab.messages.filter((m) => m.type === 'session.state').length, 0, 'the log covered the gap: no resync')
})

t.test('tabs of many sessions on one node each catch up without a gap while events keep coming', async (t) => {
  // Regression guard: the catch-up runs session after session. A session still waiting for
  // its turn must hold back the live frames its re-subscribed channel delivers meanwhile;
  // sending one would move the tab past the events it missed, and they would never come.
  // The log keeps every event the loop below can publish: this test is about catching up
  // from the log, and a log that has lost some ends in a resync snapshot instead (by design).
  const app = await build(t, { SESSION_MAX_CONCURRENT_PER_USER: '50', EVENT_LOG_MAX: '1000000' })
  await app.user('ada')
  const address = await listen(app)
  const redis = await inspector(t)
  const sessions: { id: string; tab: Awaited<ReturnType<typeof openTab>>['tab'] }[] = []
  for (let i = 0; i < 12; i++) {
    const client = await app.client().signIn('ada')
    const { tab } = await openTab(address, client.sid!, { tabId: `T${i}` })
    sessions.push({ id: client.sessionId!, tab })
  }
  const keepUntil = new Date(Date.now() + 3_600_000)
  const publish = (sessionId: string) => app.ctx.bus.publishSessionEvent(sessionId, { type: 'session.active', lastActivity: new Date().toISOString() }, keepUntil)
  for (const s of sessions) await publish(s.id)
  for (const s of sessions) await s.tab.next((m) => m.seq === 1)

  const killed = await subscriberId(redis, app.hub)
  t.ok(killed)
  await redis.call('CLIENT', 'KILL', 'ID', killed!)
  for (const s of sessions) await publish(s.id)

  // Keep publishing to the session that catches up last, as fast as Redis answers, across
  // the reconnect, until it hears anything new; then once more to every session.
  const last = sessions.at(-1)!
  const deadline = Date.now() + 15_000
  do await publish(last.id)
  while (!last.tab.messages.some((m) => typeof m.seq === 'number' && m.seq > 2) && Date.now() < deadline)
  for (const s of sessions) await publish(s.id)

  for (const [i, s] of sessions.entries()) {
    const final = await app.ctx.bus.currentSeq(s.id)
    await s.tab.next((m) => m.seq === final)
    t.same(seqs(s.tab.messages), oneTo(final), `session ${i}: seq 1–${final}, no gap, no duplicate`)
    t.notOk(s.tab.messages.some((m) => m.resync), `session ${i}: the log covered the gap, no resync`)
  }
})

t.test('the catch-up after a reconnect reads the log only once Redis has taken the re-SUBSCRIBE', async (t) => {
  // Bug 4: ioredis says 'ready' when it has sent SUBSCRIBE again, before Redis acknowledges it.
  // An event published in between was neither in the log read by the catch-up nor heard live.
  const redis = await TcpProxy.to(t, testRedisUrl())
  const app = await build(t, {}, { via: { redis } })
  await app.user('ada')
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const sessionId = ada.sessionId!
  const keepUntil = new Date(Date.now() + 3_600_000)
  const publish = () => app.ctx.bus.publishSessionEvent(sessionId, { type: 'session.active', lastActivity: new Date().toISOString() }, keepUntil)
  const { tab } = await openTab(address, ada.sid!, { tabId: 'A' })
  await publish()
  await tab.next((m) => m.seq === 1)

  const resubscribing = redis.hold((pipe, chunk) => isSubscriber(pipe) && subscribes(app.ctx.keys.sessionChannel(sessionId))(pipe, chunk))
  t.equal(redis.drop(isSubscriber), 1, "the node's subscriber connection is cut")
  await resubscribing // the new connection has sent its SUBSCRIBE; Redis has not seen it
  t.equal(await publish(), 2)
  await sleep(300) // time for a catch-up that does not wait to read the log too early
  redis.release()
  await tab.next((m) => m.seq === 2, 10_000)
  t.same(seqs(tab.messages), [1, 2], 'the event published in that window arrives, once')
})

t.test('a tab in the middle of its hello when the subscriber reconnects still gets what was published meanwhile', async (t) => {
  // Bug 5: the catch-up took only live tabs. A tab that had read its seq but was not welcomed
  // yet went live after the catch-up, past the events its node never heard.
  const redis = await TcpProxy.to(t, testRedisUrl())
  const postgres = await TcpProxy.to(t, testDatabaseUrl('postgres'))
  const app = await build(t, {}, { via: { redis, postgres } })
  await app.user('ada')
  const address = await listen(app)
  const inspect = await inspector(t)
  const ada = await app.client().signIn('ada')
  const sessionId = ada.sessionId!
  const channel = app.ctx.keys.sessionChannel(sessionId)
  const keepUntil = new Date(Date.now() + 3_600_000)
  const tab = await connect(address, { cookie: `sid=${ada.sid}` })

  const waiting = postgres.hold(() => true)
  tab.send({ type: 'hello', tabId: 'A', view: '/' })
  await waiting
  await until('the hello has joined', () => app.hub.tabsOf(sessionId).length === 1)
  await until('the node hears the session', async () => (await subscribers(inspect, channel)) === 1)
  // It has read the seq (0) and is in presence; the insert of its view's audit row is held.
  await until('the hello to wait for PostgreSQL', () => recordsView(postgres.heldText(), sessionId))

  t.equal(redis.drop(isSubscriber), 1, "the node's subscriber connection is cut")
  await until('Redis has dropped it', async () => (await subscribers(inspect, channel)) === 0)
  for (let i = 0; i < 3; i++) await app.ctx.bus.publishSessionEvent(sessionId, { type: 'session.active', lastActivity: new Date().toISOString() }, keepUntil)
  await until('the node hears the session again', async () => (await subscribers(inspect, channel)) === 1)
  // The catch-up marks the tabs still in their hello, then PINGs on the new subscriber connection.
  await until('the catch-up to have started', () => redis.connections(isSubscriber).some((pipe) => pings(pipe.sent)))
  postgres.release()

  const welcome = await tab.type('welcome')
  t.equal(welcome.seq, 0, 'welcomed with the seq it read before the reconnect')
  await tab.next((m) => m.seq === 3)
  t.same(seqs(tab.messages), [1, 2, 3], 'then the three events it would have missed, in order')
})

t.test('Redis restarts empty while tabs stay connected: each tab gets one resync, then the events after it', async (t) => {
  // The catch-up's resync branch: the log the tabs would catch up from is gone. Its seq is a
  // new numbering above the old one (issue 12, defect 1), and the next event follows it.
  const redis = await privateRedis(t)
  const app = await build(t, { REDIS_URL: redis.url })
  const { platformIds } = await app.user('ada', { platforms: ['P0', 'P1'] })
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const switchTo = async (id: number) => t.equal((await ada.post(`/api/switch_platform/${id}`)).statusCode, 200)
  const tabs = [await openTab(address, ada.sid!, { tabId: 'A' }), await openTab(address, ada.sid!, { tabId: 'B' })]
  await switchTo(platformIds[1]!)
  await switchTo(platformIds[0]!)
  for (const { tab } of tabs) await tab.next((m) => m.seq === 2)

  await redis.restart()
  const baselines: number[] = []
  for (const { tab } of tabs) {
    const resync = await tab.next((m) => m.type === 'session.state', 20_000)
    t.match(resync, { resync: true, seq: Number, at: String, state: { platform: { id: platformIds[0] }, version: 3 } }, 'the state from PostgreSQL')
    t.ok(resync.seq! > 2, 'its seq is above the old ones')
    baselines.push(resync.seq!)
  }
  t.equal(baselines[0], baselines[1], 'both tabs are given the same baseline')
  await until('the app can publish again', async () => (await ada.post(`/api/switch_platform/${platformIds[1]}`)).statusCode === 200, 20_000)
  for (const [i, { tab }] of tabs.entries()) {
    t.match(await tab.next((m) => m.type === 'platform.switched' && m.seq === baselines[i]! + 1), { platform: { id: platformIds[1] } }, `tab ${'AB'[i]} gets the next event, right after its resync`)
    t.equal(tab.messages.filter((m) => m.type === 'session.state').length, 1, 'exactly one resync')
    t.equal(tab.ws.readyState, tab.ws.OPEN, 'and stays connected')
  }
})
