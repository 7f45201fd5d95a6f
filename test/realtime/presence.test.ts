// Presence counts the distinct open tabs of a session (issue 3, bug 3): a tab that reconnects
// with its tabId (docs/realtime.md tells clients to) while its old socket is not yet reaped
// must stay counted when that old socket is finally closed.
import t from 'tap'
import WebSocket from 'ws'
import { build, type TestApp } from '../helpers/app.js'
import { listen, openTab, TabClient } from '../helpers/ws.js'
import { sleep, until } from '../helpers/wait.js'

/**
 * Counts the admin-feed changes of one session: the hub publishes one once presence has
 * written a tab's close. Waiting for the next one waits for the close to be in presence.
 */
async function presenceWrites(t: { teardown(fn: () => unknown): void }, app: TestApp, sessionId: string) {
  const sub = app.resources.redis.duplicate()
  t.teardown(() => sub.quit())
  await sub.connect()
  await sub.subscribe(app.ctx.keys.adminChanges)
  const seen = { count: 0 }
  sub.on('message', (_channel, message) => {
    if (message === sessionId) seen.count++
  })
  return {
    /** Runs `act`, then waits until presence has written what it did. */
    async after(what: string, act: () => Promise<unknown>) {
      const before = seen.count
      await act()
      await until(`presence to write ${what}`, () => seen.count > before)
    },
  }
}

t.test('a tab that reconnects with its tabId before its old socket is reaped stays counted', async (t) => {
  const app = await build(t, { WS_PING_INTERVAL_SECONDS: '1' })
  await app.user('ada')
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const tabs = async () => (await ada.get('/api/session_state')).json().session.tabs as number

  // The old socket's network is gone: it answers no ping (the server cannot tell yet).
  const ws = new WebSocket(`ws://${address}/ws`, {
    headers: { cookie: `sid=${ada.sid}`, origin: 'http://localhost:3000', 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0 Safari/537.36' },
    autoPong: false,
  })
  const dead = new TabClient(ws)
  await new Promise((r) => ws.once('open', r))
  dead.send({ type: 'hello', tabId: 'A', view: '/' })
  await dead.type('welcome')
  const other = await openTab(address, ada.sid!, { tabId: 'B' })

  const fresh = await openTab(address, ada.sid!, { tabId: 'A' })
  let pings = 0
  fresh.tab.ws.on('ping', () => pings++)
  const writes = await presenceWrites(t, app, ada.sessionId!)
  t.equal(await tabs(), 2, 'tab A (on two sockets for now) and tab B: two tabs')
  await writes.after('the reaped socket', async () => t.equal((await dead.closed).code, 4408, 'the old socket is reaped'))
  await until('two more ping rounds', () => pings >= 2)
  t.equal(fresh.tab.ws.readyState, WebSocket.OPEN)
  t.equal(await tabs(), 2, 'tab A is still counted, on its new socket')

  await writes.after('the close of tab B', () => other.tab.close())
  t.equal(await tabs(), 1, 'closing tab B removes only tab B')
  await writes.after('the close of tab A', () => fresh.tab.close())
  t.equal(await tabs(), 0, 'and closing tab A leaves none')
})

t.test('the admin view counts the tab once while it has two sockets', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const first = await openTab(address, ada.sid!, { tabId: 'A' })
  const second = await openTab(address, ada.sid!, { tabId: 'A' }) // e.g. a duplicated browser tab
  const admin = await app.client().signIn('admin', 'admin-password-1')
  const row = () => admin.get('/admin/sessions').then((r) => (r.json().items as { id: string; tabs: number }[]).find((s) => s.id === ada.sessionId))
  t.match(await row(), { tabs: 1 })
  const writes = await presenceWrites(t, app, ada.sessionId!)
  await writes.after('the close of the first socket', () => first.tab.close())
  t.match(await row(), { tabs: 1 }, 'one socket of tab A closed: the other still holds it open')
  await writes.after('the close of the second socket', () => second.tab.close())
  t.match(await row(), { tabs: 0 })
})

t.test('with pings spread over the ticks of the interval, every tab is still pinged and kept counted, and a silent one among them is reaped', async (t) => {
  const app = await build(t, { WS_PING_INTERVAL_SECONDS: '1' })
  await app.user('ada')
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const tabs = async () => (await ada.get('/api/session_state')).json().session.tabs as number
  // 25 tabs over the interval's 10 ticks: two or three on each.
  const answering = []
  for (let i = 0; i < 24; i++) answering.push((await openTab(address, ada.sid!, { tabId: `T${i}` })).tab)
  const pings = answering.map(() => 0)
  for (const [i, tab] of answering.entries()) tab.ws.on('ping', () => pings[i]!++)
  const ws = new WebSocket(`ws://${address}/ws`, {
    headers: { cookie: `sid=${ada.sid}`, origin: 'http://localhost:3000', 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0 Safari/537.36' },
    autoPong: false,
  })
  const silent = new TabClient(ws)
  await new Promise((r) => ws.once('open', r))
  silent.send({ type: 'hello', tabId: 'silent', view: '/' })
  await silent.type('welcome')
  t.equal(await tabs(), 25)

  t.equal((await silent.closed).code, 4408, 'the silent tab is closed after two intervals')
  await sleep(3500) // more than two intervals again: a tab missed by the ping ticks would no longer count
  t.same(
    answering.flatMap((tab, i) => (tab.ws.readyState === WebSocket.OPEN ? [] : [i])),
    [],
    'every answering tab is still open',
  )
  t.same(
    pings.filter((n) => n < 2),
    [],
    'and has been pinged, interval after interval',
  )
  t.equal(await tabs(), 24, 'and counted; the silent one is not')
  for (const tab of answering.slice(0, 12)) await tab.close()
  await until('the closed tabs to leave presence', async () => (await tabs()) === 12)
  await sleep(1500)
  t.equal(await tabs(), 12, 'for good: no ping tick brings a closed one back')
})

t.test('tabs seen in one turn of the event loop, and in a later one, are all counted', async (t) => {
  // Presence.seeTabs gathers a turn's tabs into one socket write: none may be left behind.
  const app = await build(t)
  const sessions = Array.from({ length: 6 }, (_, i) => `00000000-0000-4000-8000-00000000000${i}`)
  const seen = (i: number) => ({ sessionId: sessions[i]!, socket: { socketId: `socket-${i}`, tabId: `tab-${i}` }, keepUntil: Date.now() + 60_000, view: `/view-${i}` })
  const presence = app.app.presence
  const first = [presence.seeTabs([seen(0)]), presence.seeTabs([seen(1), seen(2)])]
  t.equal(first[0], first[1], 'the calls of one turn share one write')
  let second: Promise<void>[] = []
  const written = first[0]!.then(() => {
    // Called once the first turn's write has settled: a turn of its own.
    second = [presence.seeTabs([seen(3)]), presence.seeTabs([seen(4), seen(5)])]
  })
  await written
  await Promise.all(second)
  t.not(second[0], first[0], 'a later turn has a write of its own')
  for (let i = 0; i < sessions.length; i++) {
    const tabs = await app.resources.redis.zrange(app.ctx.keys.sessionTabs(sessions[i]!), '0', '-1')
    t.same(tabs, [`socket-${i}|tab-${i}`], `session ${i}: its tab is counted`)
    t.equal(await app.resources.redis.hget(app.ctx.keys.sessionPresence(sessions[i]!), 'view'), `/view-${i}`, `session ${i}: with its view`)
  }
})
