// A session's presence hash (its current view, last activity) always has an expiry, and
// nothing writes it again once the session has ended and its presence was forgotten.
import t from 'tap'
import { build, testRedisUrl } from '../helpers/app.js'
import { isSubscriber, subscribes, TcpProxy } from '../helpers/tcp-proxy.js'
import { until } from '../helpers/wait.js'
import { listen, openTab, type TabClient } from '../helpers/ws.js'

/** Waits until the server has handled everything the tab sent before (messages are handled in order). */
async function handled(tab: TabClient, id: string) {
  tab.send({ type: 'ping', id })
  await tab.next((m) => m.type === 'pong' && m.id === id)
}

t.test('a view from a tab whose ended session was forgotten meanwhile does not bring its presence back', async (t) => {
  // issue 12, defect 16: the view was written with HSET alone, a hash with no expiry.
  const redis = await TcpProxy.to(t, testRedisUrl())
  const app = await build(t, {}, { via: { redis } })
  await app.user('ada')
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const sessionId = ada.sessionId!
  const presence = app.ctx.keys.sessionPresence(sessionId)
  const { tab } = await openTab(address, ada.sid!, { tabId: 'A' })

  // The node does not hear the ending for now (its subscriber is reconnecting): the tab is
  // still open when the session-ended job forgets the session's presence.
  const resubscribing = redis.hold((pipe, chunk) => isSubscriber(pipe) && subscribes(app.ctx.keys.sessionChannel(sessionId))(pipe, chunk))
  t.equal(redis.drop(isSubscriber), 1)
  await resubscribing
  await app.client().signIn('ada').then((other) => other.delete(`/api/sessions/${sessionId}`))
  await app.ctx.store.forgetPresence([sessionId])
  t.equal(await app.resources.redis.exists(presence), 0, 'presence is forgotten')

  tab.send({ type: 'view', view: '/late' })
  await handled(tab, 'view')
  t.equal(await app.resources.redis.exists(presence), 0, 'and stays forgotten')
  redis.release()
  t.match(await tab.type('session.terminated'), { reason: 'revoked_by_user' }, 'the tab learns of the ending afterwards')
})

t.test('a heartbeat view after Redis lost the presence hash writes it back with an expiry', async (t) => {
  // issue 12, defect 16: seeTabs wrote the view with HSET alone too.
  const app = await build(t)
  await app.user('ada')
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const presence = app.ctx.keys.sessionPresence(ada.sessionId!)
  const { tab } = await openTab(address, ada.sid!, { tabId: 'A' })
  await app.resources.redis.del(presence) // evicted, say

  tab.send({ type: 'heartbeat', view: '/elsewhere' })
  await handled(tab, 'heartbeat')
  await until('the view is back', async () => (await app.resources.redis.hget(presence, 'view')) === '/elsewhere')
  t.ok((await app.resources.redis.pttl(presence)) > 0, 'with an expiry')
})
