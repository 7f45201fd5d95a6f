// The client SDK against a real server: tabs of one browser simulated in Node, with real
// sockets, a real BroadcastChannel and the server's real events.
import t, { type Test } from 'tap'
import type { SessionClient, SessionEnvironment } from '../../client/sdk/index.js'
import { ADMIN_PASSWORD, build, PASSWORD } from '../helpers/app.js'
import { NodeBrowser } from '../helpers/node-browser.js'
import { until } from '../helpers/wait.js'
import { listen } from '../helpers/ws.js'

type Socket = ReturnType<SessionEnvironment['socket']>

async function setup(t: Test, wrap?: (socket: Socket) => Socket) {
  const app = await build(t)
  const { platformIds } = await app.user('ada', { platforms: ['Pixelfed', 'Mastodon', 'Archive'] })
  const browser = new NodeBrowser(`http://${await listen(app)}`, wrap)
  t.teardown(() => browser.close())
  const a = browser.tab()
  t.ok(await a.signIn('ada', PASSWORD), 'signed in')
  const b = browser.tab()
  t.ok(await b.start(), 'a second tab starts on the same cookie')
  await until('both tabs welcomed', () => a.connection === 'online' && b.connection === 'online')
  await a.listPlatforms()
  return { app, browser, a, b, platformIds }
}

const platformOf = (tab: SessionClient) => tab.state?.platform?.id

t.test('a switch in one tab shows in the other at once and is then confirmed by the server', async (t) => {
  const { a, b, platformIds } = await setup(t)
  const seen: { shown?: number; confirmed?: number; pending: boolean }[] = []
  b.on('change', () => seen.push({ shown: platformOf(b), confirmed: b.confirmed?.platform?.id, pending: !!b.pendingSwitch }))
  const switched: number[] = []
  b.on('platformSwitched', (e) => switched.push(e.platform!.id))
  t.equal((await a.switchPlatform(platformIds[1]!))?.id, platformIds[1])
  await until('B confirmed', () => b.confirmed?.platform?.id === platformIds[1] && !b.pendingSwitch)
  const first = seen.find((s) => s.shown === platformIds[1])
  t.same(first, { shown: platformIds[1], confirmed: platformIds[0], pending: true }, 'B showed it as pending before the server confirmed it')
  t.same(seen.at(-1), { shown: platformIds[1], confirmed: platformIds[1], pending: false }, 'then confirmed')
  t.same(switched, [platformIds[1]], 'platformSwitched once')
  t.notOk(seen.some((s) => s.shown === platformIds[2]), 'nothing else was ever shown')
  const { lastSwitch } = b.metrics()
  t.type(lastSwitch?.optimisticMs, 'number')
  t.type(lastSwitch?.confirmedMs, 'number')
  t.comment(`B: optimistic after ${lastSwitch?.optimisticMs} ms, confirmed after ${lastSwitch?.confirmedMs} ms`)
})

t.test('single-flight: while a switch is pending, a switch from any tab rejects with SWITCH_IN_PROGRESS and the first wins', async (t) => {
  const { a, b, platformIds } = await setup(t)
  const first = a.switchPlatform(platformIds[1]!)
  await t.rejects(b.switchPlatform(platformIds[2]!), { code: 'SWITCH_IN_PROGRESS' }, 'the other tab')
  await t.rejects(a.switchPlatform(platformIds[2]!), { code: 'SWITCH_IN_PROGRESS' }, 'the same tab (a double click)')
  await first
  await until('both on the first one', () => a.confirmed?.platform?.id === platformIds[1] && b.confirmed?.platform?.id === platformIds[1])
  t.equal(a.confirmed?.version, b.confirmed?.version, 'same version in both tabs')
})

t.test('a failing switch reverts in every tab and each reports the error', async (t) => {
  const { app, a, b, platformIds } = await setup(t)
  // Removed behind the tabs' back: the switcher still offers it.
  await app.resources.database.sql`delete from platforms where id = ${platformIds[2]!}`
  const failures: string[] = []
  for (const tab of [a, b]) tab.on('switchFailed', (e) => failures.push(e.error.code))
  const shownByB: (number | undefined)[] = []
  b.on('change', () => shownByB.push(platformOf(b)))
  await t.rejects(a.switchPlatform(platformIds[2]!), { code: 'PLATFORM_NOT_FOUND', status: 404 })
  await until('B heard of the failure', () => failures.length === 2)
  t.same(failures, ['PLATFORM_NOT_FOUND', 'PLATFORM_NOT_FOUND'], 'both tabs report it')
  t.ok(shownByB.includes(platformIds[2]), 'B had shown the switch optimistically')
  t.equal(platformOf(a), platformIds[0], 'A reverted')
  t.equal(platformOf(b), platformIds[0], 'B reverted')
  t.equal(b.pendingSwitch, null)
})

t.test('terminal codes: an admin termination ends every tab with the message and note, and nothing reconnects', async (t) => {
  const { app, browser, a, b } = await setup(t)
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  const ended: unknown[] = []
  for (const tab of [a, b]) tab.on('terminated', (e) => ended.push(e))
  const res = await admin.delete(`/admin/sessions/${a.state!.session.id}`, { reason: 'Security review' })
  t.equal(res.statusCode, 200)
  await until('both tabs ended', () => ended.length === 2)
  t.same(ended, [
    { reason: 'admin', message: 'Session terminated by administrator', note: 'Security review' },
    { reason: 'admin', message: 'Session terminated by administrator', note: 'Security review' },
  ])
  t.equal(a.phase, 'ended')
  t.equal(b.state, null, 'the state is gone')
  t.equal(browser.storage.getItem('tessera:state'), null, 'and so is the cached state')
  const opened = browser.socketsOpened
  await new Promise((r) => setTimeout(r, 1500))
  t.equal(browser.socketsOpened, opened, 'no socket opened after the end')
})

t.test('logout in one tab signs out the others: the server event, or the channel first', async (t) => {
  const { a, b } = await setup(t)
  const out: unknown[] = []
  b.on('loggedOut', (e) => out.push(e))
  await a.logout()
  await until('B signed out', () => out.length === 1)
  t.equal(b.phase, 'ended')
  t.equal(b.ending?.kind, 'loggedOut')
  const err = await b.sync().catch((e) => e)
  t.equal(err.status, 401, 'the cookie is dead')
})

t.test('a session that ended while the socket was down is explained by the server after the close', async (t) => {
  const { app, a, b } = await setup(t)
  const expired: unknown[] = []
  b.on('expired', (e) => expired.push(e))
  a.stop()
  // End the session as the idle sweep would, and let B learn it through its socket.
  await app.ctx.sessions.end([b.state!.session.id], 'idle_timeout')
  await until('B expired', () => expired.length === 1)
  t.same(expired, [{ reason: 'idle_timeout' }])
})

t.test('too many bad messages (4400): the tab goes offline and does not reconnect by itself', async (t) => {
  const { browser, a } = await setup(t)
  const opened = browser.socketsOpened
  for (let i = 0; i < 10; i++) a.send({ type: 'no.such.message' })
  await until('offline', () => a.connection === 'offline')
  await new Promise((r) => setTimeout(r, 1500))
  t.equal(browser.socketsOpened, opened, 'no reconnect')
  t.equal(a.phase, 'live', 'the session itself is fine')
})

/** A socket that hands the tab its frames through `filter`, which may drop or repeat them. */
function filtered(filter: (data: string) => string[]): (socket: Socket) => Socket {
  return (socket) =>
    new Proxy(socket, {
      set(target, prop, value) {
        if (prop === 'onmessage' && typeof value === 'function') {
          ;(target as Socket).onmessage = (event) => {
            for (const data of filter(String(event.data))) value({ data })
          }
          return true
        }
        return Reflect.set(target, prop, value)
      },
    })
}

t.test('a lost frame is a gap: the tab resumes and the server replays what it missed', async (t) => {
  let dropped = 0
  const drop = filtered((data) => {
    if (dropped === 0 && data.includes('"platform.switched"')) {
      dropped++
      return []
    }
    return [data]
  })
  const { a, b, platformIds } = await setup(t, drop)
  await a.switchPlatform(platformIds[1]!)
  await a.switchPlatform(platformIds[2]!)
  await until('both tabs on the last platform and seq', () => {
    const [ma, mb] = [a.metrics(), b.metrics()]
    return a.confirmed?.platform?.id === platformIds[2] && b.confirmed?.platform?.id === platformIds[2] && ma.lastSeq === 2 && mb.lastSeq === 2
  })
  const m = [a.metrics(), b.metrics()]
  t.equal(dropped, 1, 'one frame was lost')
  t.equal(m[0]!.gaps + m[1]!.gaps, 1, 'the tab that lost it saw one gap')
  t.equal(m[0]!.duplicates + m[1]!.duplicates, 0)
  t.equal(m[0]!.resyncs + m[1]!.resyncs, 0, 'replayed, not resynced')
  t.equal(m[0]!.events + m[1]!.events, 4, 'each tab applied both events once')
})

t.test('a frame delivered twice is applied once', async (t) => {
  let repeated = 0
  const twice = filtered((data) => {
    if (repeated === 0 && data.includes('"platform.switched"')) {
      repeated++
      return [data, data]
    }
    return [data]
  })
  const { a, b, platformIds } = await setup(t, twice)
  const heard: number[] = []
  for (const tab of [a, b]) tab.on('platformSwitched', (e) => heard.push(e.version))
  await a.switchPlatform(platformIds[1]!)
  await until('B confirmed', () => b.confirmed?.platform?.id === platformIds[1])
  await until('A heard the echo too', () => a.metrics().events + b.metrics().events >= 2)
  t.equal(a.metrics().duplicates + b.metrics().duplicates, 1, 'the repeat was dropped')
  t.equal(heard.length, 2, 'each tab applied the switch once')
})

t.test('a tab that misses session.terminated still shows the administrator’s reason: the refusal carries it', async (t) => {
  // The e2e flake: a tab whose request crossed the termination ended on the 401, which
  // named no reason, and told the other tabs so before their events came.
  const app = await build(t)
  await app.user('ada')
  const noTerminalEvent = filtered((data) => (data.includes('"session.terminated"') ? [] : [data]))
  const browser = new NodeBrowser(`http://${await listen(app)}`, noTerminalEvent)
  t.teardown(() => browser.close())
  const tab = browser.tab()
  t.ok(await tab.signIn('ada', PASSWORD), 'signed in')
  await until('welcomed', () => tab.connection === 'online')
  const ended: unknown[] = []
  tab.on('terminated', (e) => ended.push(e))
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  t.equal((await admin.delete(`/admin/sessions/${tab.state!.session.id}`, { reason: 'Security review' })).statusCode, 200)
  await until('the tab ended', () => ended.length === 1)
  t.same(ended, [{ reason: 'admin', message: 'Session terminated by administrator', note: 'Security review' }])
  const told = () => browser.channelLog.filter((m) => (m as { k: string }).k === 'ended')
  await until('the channel heard the ending', () => told().length === 1)
  t.same(told(), [{ k: 'ended', ending: { kind: 'terminated', ...ended[0]! } }], 'and told the other tabs the same')
})
