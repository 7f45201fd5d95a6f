// A node's Redis subscriber drops and reconnects: what was published meanwhile never
// reached it by pub/sub, so its tabs must catch up from the session logs — every missed
// event once, in seq order — and then keep receiving live events.
import type { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { connectRedis } from '../../src/infra/redis.js'
import type { Hub } from '../../src/realtime/hub.js'
import { build, type Client, testRedisUrl } from '../helpers/app.js'
import { listen, type Message, openTab } from '../helpers/ws.js'

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
  const app = await build(t, { SESSION_MAX_CONCURRENT_PER_USER: '50' })
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
  }
})
