import t from 'tap'
import { build } from '../helpers/app.js'
import { listen, openTab } from '../helpers/ws.js'

t.test('a switch in tab A reaches tabs B and C of the same session, and no one else', async (t) => {
  const app = await build(t)
  await app.user('ada', { platforms: ['Pixelfed', 'Mastodon'] })
  await app.user('bob', { platforms: ['Bobnet'] })
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const adaPhone = await app.client().signIn('ada')
  const bob = await app.client().signIn('bob')
  const a = await openTab(address, ada.sid!, { tabId: 'A' })
  const b = await openTab(address, ada.sid!, { tabId: 'B' })
  const c = await openTab(address, ada.sid!, { tabId: 'C' })
  const other = await openTab(address, adaPhone.sid!, { tabId: 'P' })
  const stranger = await openTab(address, bob.sid!, { tabId: 'X' })
  t.match(a.welcome, { type: 'welcome', sessionId: ada.sessionId, tabId: 'A', seq: 0, resumed: false, replayed: 0, heartbeatIntervalMs: 30000, idleAfterMs: 900000 })
  t.match(a.welcome.state, { user: { username: 'ada' }, platform: { name: 'Pixelfed' }, version: 1, seq: 0 })

  const [, mastodon] = (await ada.get('/api/platforms')).json().items
  const res = await ada.post(`/api/switch_platform/${mastodon.id}`, {}, { 'x-tab-id': 'A' })
  t.equal(res.statusCode, 200)
  for (const tab of [a, b, c]) {
    const e = await tab.tab.type('platform.switched')
    t.match(e, { type: 'platform.switched', seq: 1, version: 2, byTabId: 'A', platform: { id: mastodon.id, name: 'Mastodon' }, previousPlatform: { name: 'Pixelfed' }, at: String })
  }
  for (const tab of [a, b, c]) t.equal(tab.tab.binaryFrames, 0, 'as JSON text frames')
  await new Promise((r) => setTimeout(r, 200))
  t.same(other.tab.logged(), [], "the user's other session hears nothing")
  t.same(stranger.tab.logged(), [], 'another user hears nothing')
  const state = (await ada.get('/api/session_state')).json()
  t.equal(state.session.tabs, 3, 'three tabs are present')
  t.equal(state.seq, 1)
})
