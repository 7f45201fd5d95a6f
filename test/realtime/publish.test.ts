// The event bus's one publishing step (publish-session-event.lua.ts) and session.state.
import t from 'tap'
import { publishSessionState } from '../../src/realtime/session-state.js'
import { build } from '../helpers/app.js'
import { listen, type Message, openTab } from '../helpers/ws.js'

const isEvent = (seq: number) => (m: Message) => m.seq === seq && m.type !== 'welcome'

t.test('a lost seq counter does not break publishing: the next event follows the log', async (t) => {
  // Bug 7: with the counter gone and the log kept, INCR restarted at 1, XADD refused the used
  // id after the counter and version were written, and the request failed after its commit.
  const app = await build(t)
  const { platformIds } = await app.user('ada', { platforms: ['P0', 'P1'] })
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const sessionId = ada.sessionId!
  const { tab } = await openTab(address, ada.sid!, { tabId: 'A' })
  for (const id of [platformIds[1], platformIds[0], platformIds[1]]) t.equal((await ada.post(`/api/switch_platform/${id}`)).statusCode, 200)
  await tab.next(isEvent(3))

  await app.resources.redis.del(app.ctx.keys.sessionSeq(sessionId)) // evicted, say
  const res = await ada.post(`/api/switch_platform/${platformIds[0]}`)
  t.equal(res.statusCode, 200, 'the switch succeeds')
  t.match(await tab.next(isEvent(4)), { type: 'platform.switched', version: 5, platform: { id: platformIds[0] } }, 'and is published as seq 4')
  t.equal(await app.ctx.bus.currentSeq(sessionId), 4, 'the counter is back, past the log')
  t.same(
    tab.logged().map((m) => m.seq),
    [1, 2, 3, 4],
  )
  const resumed = await openTab(address, ada.sid!, { tabId: 'B', lastSeq: 2 })
  t.match(resumed.welcome, { seq: 4, resumed: true, replayed: 2 }, 'and the log still resumes')
})

t.test('publishSessionState sends every tab a session.state with the state as it is now', async (t) => {
  const app = await build(t)
  const { id: userId } = await app.user('ada')
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const tabs = [await openTab(address, ada.sid!, { tabId: 'A' }), await openTab(address, ada.sid!, { tabId: 'B' })]

  // What a role change does: commit, then tell the tabs.
  await app.resources.database.sql`update users set role = 'reviewer' where id = ${userId}`
  await app.ctx.sessions.refreshUser(userId)
  const seq = await publishSessionState(app.ctx, ada.sessionId!)
  t.equal(seq, 1)
  for (const { tab } of tabs) {
    const m = await tab.next(isEvent(1))
    t.match(m, { type: 'session.state', seq: 1, at: String, state: { user: { username: 'ada', role: 'reviewer' }, session: { id: ada.sessionId, tabs: 2 } } })
    t.notOk('resync' in m, 'not a resync')
  }
  const other = await app.client().signIn('ada')
  await other.post('/api/auth/logout')
  t.equal(await publishSessionState(app.ctx, other.sessionId!), 0, 'nothing for an ended session')
})

t.test('a live event past a gap makes the tab read what it missed from the log first', async (t) => {
  // Gap detection: an event that never reached this node (written to the log, lost on the
  // way) is fetched before the next live one is delivered; when the log lost it too, one resync.
  const app = await build(t)
  await app.user('ada')
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const sessionId = ada.sessionId!
  const { keys } = app.ctx
  const redis = app.resources.redis
  const keepUntil = new Date(Date.now() + 3_600_000)
  const publish = () => app.ctx.bus.publishSessionEvent(sessionId, { type: 'session.active', lastActivity: new Date().toISOString() }, keepUntil)
  /** An event in the log whose pub/sub message was lost. */
  const unheard = async (seq: number) => {
    await redis.set(keys.sessionSeq(sessionId), seq)
    await redis.xadd(keys.sessionLog(sessionId), `${seq}-1`, 'f', JSON.stringify({ type: 'session.idle', lastActivity: new Date().toISOString(), at: new Date().toISOString(), seq }))
  }
  const { tab } = await openTab(address, ada.sid!, { tabId: 'A' })
  await publish()
  await unheard(2)
  await unheard(3)
  t.equal(await publish(), 4)
  await tab.next(isEvent(4))
  t.same(
    tab.logged().map((m) => `${m.seq}:${m.type}`),
    ['1:session.active', '2:session.idle', '3:session.idle', '4:session.active'],
    'the two unheard events come from the log, in order, before seq 4',
  )

  await redis.set(keys.sessionSeq(sessionId), 6) // seq 5 and 6 are lost to the log as well
  t.equal(await publish(), 7)
  const resync = await tab.next((m) => m.type === 'session.state')
  t.match(resync, { resync: true, seq: 7, state: { session: { id: sessionId } } }, 'the log cannot cover the gap: one resync')
  t.notOk(tab.logged().some((m) => m.seq === 7 && m.type === 'session.active'), 'the state already holds seq 7')
  await publish()
  t.match(await tab.next(isEvent(8)), { type: 'session.active' }, 'then live again')
})
