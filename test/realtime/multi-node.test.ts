// Two API nodes as two processes would be: each with its own Redis connections and its own
// PostgreSQL pool, sharing only the servers. Events are published from both nodes at once.
import t from 'tap'
import { build, Client, type TestApp } from '../helpers/app.js'
import { listen, type Message, openTab } from '../helpers/ws.js'

const keepUntil = new Date(Date.now() + 3_600_000)

/** n events straight on a node's bus and n platform switches over its HTTP API, all at once. */
function publishFrom(node: Pick<TestApp, 'ctx'>, client: Client, sessionId: string, platformIds: number[], n: number) {
  return [
    ...Array.from({ length: n }, (_, i) =>
      node.ctx.bus.publishSessionEvent(sessionId, { type: 'session.active', lastActivity: new Date(Date.now() - i).toISOString() }, keepUntil),
    ),
    ...Array.from({ length: n }, (_, i) =>
      client.post(`/api/switch_platform/${platformIds[i % platformIds.length]}`).then((res) => {
        if (res.statusCode !== 200) throw new Error(res.body)
      }),
    ),
  ]
}

const wire = (messages: Message[]) => messages.filter((m) => typeof m.seq === 'number' && m.type !== 'welcome').map((m) => JSON.stringify(m))
/** The logged event with this seq (welcome carries a seq too). */
const isEvent = (seq: number) => (m: Message) => m.seq === seq && m.type !== 'welcome'
const oneTo = (n: number, from = 1) => Array.from({ length: n - from + 1 }, (_, i) => from + i)

t.test('tabs of one session on two independent nodes see the same events in the same order, and resume across nodes exactly', async (t) => {
  const app = await build(t)
  const { platformIds } = await app.user('ada', { platforms: ['P0', 'P1', 'P2'] })
  const other = await app.node({}, { ownConnections: true })
  t.not(other.ctx.redis, app.ctx.redis, 'the second node has its own Redis connection')
  t.not(other.ctx.database, app.ctx.database, 'and its own database pool')
  const one = await listen(app)
  const two = await listen(other)
  const ada = await app.client().signIn('ada')
  const adaViaTwo = new Client(other.app, {})
  Object.assign(adaViaTwo, { sid: ada.sid, csrf: ada.csrf, sessionId: ada.sessionId })
  const sessionId = ada.sessionId!

  const a = await openTab(one, ada.sid!, { tabId: 'A' })
  const b = await openTab(two, ada.sid!, { tabId: 'B' })
  const c = await openTab(two, ada.sid!, { tabId: 'C' })
  await Promise.all([...publishFrom(app, ada, sessionId, platformIds, 15), ...publishFrom(other, adaViaTwo, sessionId, platformIds, 15)])
  const final = await app.ctx.bus.currentSeq(sessionId)
  t.ok(final >= 30, `${final} events published from both nodes`)
  for (const tab of [a, b, c]) await tab.tab.next(isEvent(final), 20_000)
  t.same(
    a.tab.logged().map((m) => m.seq),
    oneTo(final),
    'seq 1…final, no gap, no duplicate',
  )
  t.same(wire(b.tab.messages), wire(a.tab.messages), 'the other node’s tabs got the very same frames, in the same order')
  t.same(wire(c.tab.messages), wire(a.tab.messages))

  // Tab A goes offline on node one and comes back on node two.
  const lastSeq = final
  await a.tab.close()
  await Promise.all([...publishFrom(app, ada, sessionId, platformIds, 8), ...publishFrom(other, adaViaTwo, sessionId, platformIds, 8)])
  const now = await app.ctx.bus.currentSeq(sessionId)
  const back = await openTab(two, ada.sid!, { tabId: 'A', lastSeq })
  t.match(back.welcome, { resumed: true, seq: now, replayed: now - lastSeq })
  await back.tab.next(isEvent(now))
  await b.tab.next(isEvent(now))
  t.same(
    back.tab.logged().map((m) => m.seq),
    oneTo(now, lastSeq + 1),
    'exactly the missed events',
  )
  t.same(
    wire(back.tab.messages),
    wire(b.tab.messages).slice(lastSeq),
    'the same frames the tab that stayed got',
  )
})
