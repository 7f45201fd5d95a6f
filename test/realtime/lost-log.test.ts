// Redis loses a session's seq counter and event log (restarted empty, flushed, evicted)
// while its tabs stay connected: the tabs must neither drop what follows as old nor be
// resynced into a session that has ended.
import t, { type Test } from 'tap'
import { ADMIN_PASSWORD, build, type Client, type TestApp, testRedisUrl } from '../helpers/app.js'
import { isSubscriber, subscribes, TcpProxy } from '../helpers/tcp-proxy.js'
import { listen, type Message, openTab, type TabClient } from '../helpers/ws.js'

/** A signed-in `ada` with a live tab that has seen four platform switches (seq 1–4). */
async function tabAfterFourSwitches(app: TestApp) {
  const { platformIds } = await app.user('ada', { platforms: ['P0', 'P1'] })
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const { tab } = await openTab(address, ada.sid!, { tabId: 'A' })
  for (let i = 1; i <= 4; i++) {
    const res = await ada.post(`/api/switch_platform/${platformIds[i % 2]}`)
    if (res.statusCode !== 200) throw new Error(res.body)
  }
  await tab.next((m) => m.seq === 4 && m.type === 'platform.switched')
  return { ada, address, tab, platformIds }
}

/** What Redis eviction or a flush does to one session: its counter and its log are gone. */
async function loseSeqAndLog(app: TestApp, sessionId: string) {
  await app.resources.redis.del(app.ctx.keys.sessionSeq(sessionId), app.ctx.keys.sessionLog(sessionId))
}

async function terminateAsAdmin(app: TestApp, sessionId: string) {
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  const res = await admin.delete(`/admin/sessions/${sessionId}`, { reason: 'Suspicious activity' })
  if (res.statusCode !== 200) throw new Error(res.body)
}

async function expectTerminated(t: Test, tab: TabClient, ada: Client) {
  t.match(await tab.type('session.terminated', 10_000), { reason: 'admin', message: 'Session terminated by administrator' })
  t.equal((await tab.closed).code, 4001, 'then the close code of a termination')
  t.notOk(
    tab.messages.some((m) => m.type === 'session.state'),
    'no resync into a session that has ended',
  )
  t.equal((await ada.get('/api/session_state')).statusCode, 401, 'as HTTP with the same cookie says')
}

t.test('a live tab gets its terminal event and close after Redis lost the session seq and log', async (t) => {
  // issue 12, defect 1: the terminal event went out as seq 1 and the tab dropped it as old.
  const app = await build(t)
  const { ada, tab } = await tabAfterFourSwitches(app)
  await loseSeqAndLog(app, ada.sessionId!)
  await terminateAsAdmin(app, ada.sessionId!)
  await expectTerminated(t, tab, ada)
})

t.test('after Redis lost the session seq and log, the next event reaches a live tab and a resume is not fooled', async (t) => {
  // issue 12, defect 1: a seq that restarts is detected, by live tabs and by a resuming one.
  const app = await build(t)
  const { ada, address, tab, platformIds } = await tabAfterFourSwitches(app)
  await loseSeqAndLog(app, ada.sessionId!)
  /** The tab's view of the session after a frame: a switch, or a resync snapshot. */
  const stateIn = (m: Message) => (m.type === 'session.state' ? m.state : m) as { version?: number }
  const switchTo = async (id: number) => t.equal((await ada.post(`/api/switch_platform/${id}`)).statusCode, 200)
  await switchTo(platformIds[1]!) // version 6: seq 1 of a new numbering would be "old" to this tab
  await switchTo(platformIds[0]!) // version 7
  t.match(stateIn(await tab.next((m) => stateIn(m).version === 7, 10_000)), { platform: { id: platformIds[0] } }, 'the live tab gets the switches (as events or as one resync)')

  for (const id of [platformIds[1], platformIds[0], platformIds[1]]) await switchTo(id!) // versions 8–10
  const newest = { platform: { id: platformIds[1] }, version: 10 }
  t.match(stateIn(await tab.next((m) => stateIn(m).version === 10, 10_000)), newest, 'and every one after')

  // A tab that was away since seq 4 resumes: the five new events are not "5 and on" of the old log.
  const back = await openTab(address, ada.sid!, { tabId: 'B', lastSeq: 4 })
  t.match(back.welcome, { resumed: false, state: newest }, 'not a replay of the wrong events')
  t.match(await back.tab.type('session.state'), { resync: true, state: newest })
})

t.test('a catch-up after a subscriber reconnect ends the tab of an ended session instead of resyncing it', async (t) => {
  // issue 12, defect 1, as reproduced: seq and log lost, the session terminated while the
  // node's subscriber was away; the catch-up sent session.state resync and the tab stayed open.
  const redis = await TcpProxy.to(t, testRedisUrl())
  const app = await build(t, {}, { via: { redis } })
  const { ada, tab } = await tabAfterFourSwitches(app)
  await loseSeqAndLog(app, ada.sessionId!)

  const resubscribing = redis.hold((pipe, chunk) => isSubscriber(pipe) && subscribes(app.ctx.keys.sessionChannel(ada.sessionId!))(pipe, chunk))
  t.equal(redis.drop(isSubscriber), 1, "the node's subscriber connection is cut")
  await resubscribing
  await terminateAsAdmin(app, ada.sessionId!) // published while the node does not listen
  redis.release()
  await expectTerminated(t, tab, ada)
})
