// user.notice session_ended_elsewhere (realtime.md; issue 4, audit item h): when a session
// of a user ends, the user's other live sessions are told, once, after the ended sessions'
// tabs had their terminal event, so an ended tab never hears of its sibling's end.
import t from 'tap'
import { build } from '../helpers/app.js'
import { listen, openTab } from '../helpers/ws.js'
import { until } from '../helpers/wait.js'

const isNotice = (m: { type: string; kind?: unknown }) => m.type === 'user.notice' && m.kind === 'session_ended_elsewhere'
const iphone = { 'user-agent': 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Version/17.0 Mobile/15E148 Safari/604.1' }

t.test('a logout tells the user’s other sessions, once, with the device and IP of the ended one', async (t) => {
  const app = await build(t, {}, { workers: true })
  await app.user('ada')
  const address = await listen(app)
  const phone = await app.client(iphone).signIn('ada')
  const laptop = await app.client().signIn('ada')
  const phoneTab = (await openTab(address, phone.sid!, { tabId: 'P' }, { headers: iphone })).tab
  const laptopTabs = [(await openTab(address, laptop.sid!, { tabId: 'L1' })).tab, (await openTab(address, laptop.sid!, { tabId: 'L2' })).tab]

  t.equal((await phone.post('/api/auth/logout')).statusCode, 204)
  t.equal((await phoneTab.closed).code, 4003, 'the phone’s tab is closed')
  for (const tab of laptopTabs) {
    const notice = await tab.next(isNotice)
    t.same(
      notice,
      { type: 'user.notice', kind: 'session_ended_elsewhere', sessionId: phone.sessionId, reason: 'logout', device: { browser: 'Mobile Safari 17', os: 'iOS', type: 'mobile' }, ip: '127.0.0.1', at: notice.at },
      'every tab of the other session hears of it',
    )
  }
  // The session-ended job repeats the notice step: once it has finished, and a ping has come
  // back after it, anything it published has arrived.
  await until('the session-ended job to finish', async () => (await app.ctx.database.sql`select finalized_at from sessions where id = ${phone.sessionId!}`)[0]!.finalized_at)
  for (const tab of laptopTabs) {
    tab.send({ type: 'ping', id: 7 })
    await tab.next((m) => m.type === 'pong' && m.id === 7)
    t.equal(tab.messages.filter(isNotice).length, 1, 'once')
  }
  t.notOk(phoneTab.messages.some(isNotice), 'the ended session is not told of itself')
})

t.test('a password change ends the other sessions: the changer hears of each, the ended ones of none', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const address = await listen(app)
  const changer = await app.client().signIn('ada')
  const victims = [await app.client().signIn('ada'), await app.client().signIn('ada')]
  const changerTab = (await openTab(address, changer.sid!, { tabId: 'C' })).tab
  const victimTabs = await Promise.all(victims.map(async (v, i) => (await openTab(address, v.sid!, { tabId: `V${i}` })).tab))

  const res = await changer.post('/api/auth/password', { currentPassword: 'correct-horse-battery', newPassword: 'another-long-password' })
  t.equal(res.statusCode, 204)
  for (const tab of victimTabs) {
    t.match(await tab.type('session.terminated'), { reason: 'password_changed' })
    t.equal((await tab.closed).code, 4001)
  }
  await changerTab.next((m) => isNotice(m) && m.sessionId === victims[1]!.sessionId)
  await changerTab.next((m) => isNotice(m) && m.sessionId === victims[0]!.sessionId)
  t.same(
    changerTab.messages.filter(isNotice).map((m) => m.reason),
    ['password_changed', 'password_changed'],
    'the changer is told of both',
  )
  for (const tab of victimTabs) t.notOk(tab.messages.some(isNotice), 'an ended tab closed before any notice came')
})
