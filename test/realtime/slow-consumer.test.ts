// One slow tab must never stall the others (realtime.md): a socket whose unsent data passes
// WS_MAX_BUFFERED_BYTES is closed 1013 and resumes later, while the session's other tabs
// keep receiving every event, in order.
import type { Socket } from 'node:net'
import t from 'tap'
import { build, type TestApp } from '../helpers/app.js'
import { listen, openTab } from '../helpers/ws.js'

/** How many sockets this node closed with `code`, from its metrics. */
async function closedWith(app: TestApp, code: number): Promise<number> {
  const metric = await app.ctx.metrics.wsCloses.get()
  return metric.values.find((v) => v.labels.code === String(code))?.value ?? 0
}

t.test('a tab that stops reading is closed 1013; another tab of the session gets every event in order', async (t) => {
  // No server pings within the test: the silent slow tab must be closed for its buffer, not for silence.
  const app = await build(t, { WS_MAX_BUFFERED_BYTES: '1024', WS_PING_INTERVAL_SECONDS: '3600' })
  const { platformIds } = await app.user('ada', { platforms: ['Pixelfed', 'Mastodon'] })
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const sessionId = ada.sessionId!
  const slow = await openTab(address, ada.sid!, { tabId: 'slow' })
  const fast = await openTab(address, ada.sid!, { tabId: 'fast' })
  const platforms = (await ada.get('/api/platforms')).json().items as { id: number }[]
  const [pixelfed, mastodon] = platformIds.map((id) => platforms.find((p) => p.id === id))

  // The slow tab's client stops reading: once the kernel's socket buffers are full, what the
  // server sends piles up in its own buffer.
  const slowSocket = (slow.tab.ws as unknown as { _socket: Socket })._socket
  slowSocket.pause()

  // Published straight on the bus, shaped like real switches, until the server gives up on
  // the slow tab (how many that takes depends on the kernel's buffers).
  const keepUntil = new Date(Date.now() + 3_600_000)
  let seq = 0
  while (app.hub.tabsOf(sessionId).length === 2 && seq < 50_000) {
    const [platform, previousPlatform] = seq % 2 === 0 ? [mastodon, pixelfed] : [pixelfed, mastodon]
    seq = await app.ctx.bus.publishSessionEvent(sessionId, { type: 'platform.switched', platform, previousPlatform, version: seq + 2, byTabId: 'fast' }, keepUntil)
  }
  t.comment(`${seq} events published before the server gave up on the slow tab`)
  t.equal(await closedWith(app, 1013), 1, 'the server closed one socket as a slow consumer')
  t.equal((await app.ctx.metrics.slowConsumerCloses.get()).values[0]?.value, 1, 'counted as a slow-consumer close')
  t.same(
    app.hub.tabsOf(sessionId).map((tab) => tab.tabId),
    ['fast'],
    'the slow tab left the hub; the other stays',
  )

  // Life goes on for the other tab, through the real HTTP path too.
  const res = await ada.post(`/api/switch_platform/${mastodon!.id}`, undefined, { 'x-tab-id': 'fast' })
  t.equal(res.statusCode, 200, 'a switch over HTTP still works')
  const final = await app.ctx.bus.currentSeq(sessionId)
  await fast.tab.next((m) => m.seq === final, 30_000)
  const seqs = fast.tab.messages.filter((m) => m.type === 'platform.switched').map((m) => m.seq)
  t.equal(seqs.length, final, `the other tab got all ${final} events`)
  t.equal(
    seqs.findIndex((s, i) => s !== i + 1),
    -1,
    'in seq order, no gap, no duplicate',
  )

  // Reading again, the slow client drains what was sent before the close, then sees 1013.
  slowSocket.resume()
  t.equal((await slow.tab.closed).code, 1013, 'the slow client sees close 1013 once it reads again')

  // What was queued before the close still arrived; it reconnects and resumes from there.
  const lastSeq = Math.max(0, ...slow.tab.messages.map((m) => (m.type === 'platform.switched' ? (m.seq as number) : 0)))
  t.ok(lastSeq < final, `the slow tab had got up to seq ${lastSeq} of ${final}`)
  const again = await openTab(address, ada.sid!, { tabId: 'slow', lastSeq })
  t.match(again.welcome, { seq: final, resumed: true, replayed: final - lastSeq })
  await again.tab.event(final)
  t.same(
    again.tab.logged().map((m) => m.seq),
    Array.from({ length: final - lastSeq }, (_, i) => lastSeq + 1 + i),
    'exactly the events it had not got',
  )
})
