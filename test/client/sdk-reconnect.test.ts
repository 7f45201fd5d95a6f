// When the SDK opens a socket again after a final close code, with fake sockets and a fake
// server answer: the timing is the point, and a fake server can close every socket at once.
import t, { type Test } from 'tap'
import { BACKOFF, CLOSE, createSessionClient, type SessionClient, type SessionEnvironment, type SessionState } from '../../client/sdk/index.js'
import { sleep, until } from '../helpers/wait.js'

type SocketLike = ReturnType<SessionEnvironment['socket']>

const at = '2026-12-06T00:00:00.000Z'
const state: SessionState = {
  user: { id: 1, username: 'ada', email: null, role: 'user' },
  platform: null,
  session: { id: 's', createdAt: at, lastActivity: at, expiresAt: at, idleExpiresAt: at, status: 'active', tabs: 1 },
  version: 1,
  seq: 0,
  timestamp: at,
}

/** The client's socket, driven by the test as the server would drive it. */
class FakeSocket implements SocketLike {
  readyState = 0
  onopen: SocketLike['onopen'] = null
  onmessage: SocketLike['onmessage'] = null
  onclose: SocketLike['onclose'] = null
  onerror: SocketLike['onerror'] = null
  send(): void {}
  close(code = 1000): void {
    this.shut(code)
  }
  accept(): void {
    if (this.readyState !== 0) return
    this.readyState = 1
    this.onopen?.({})
  }
  welcome(): void {
    if (this.readyState !== 1) return
    const welcome = { type: 'welcome', sessionId: 's', tabId: 't', seq: 0, state, heartbeatIntervalMs: 30_000, idleAfterMs: 60_000, resumed: false, replayed: 0 }
    this.onmessage?.({ data: JSON.stringify(welcome) })
  }
  shut(code: number): void {
    if (this.readyState === 3) return
    this.readyState = 3
    this.onclose?.({ code })
  }
}

/** The server welcomes every socket. */
const welcomeEach = (socket: FakeSocket) => {
  socket.accept()
  socket.welcome()
}

/**
 * A tab whose sockets `server.serve` answers (each one just after it is opened; a test may
 * swap it), whose session_state always says the session lives, and with a window and
 * document the test dispatches `online` and `visibilitychange` on. `random` picks the
 * backoff draws.
 */
async function tab(t: Test, random: () => number) {
  const server = { serve: welcomeEach }
  const sockets: { socket: FakeSocket; openedAt: number }[] = []
  let stateReads = 0
  const window = new EventTarget()
  const document = Object.assign(new EventTarget(), { visibilityState: 'hidden' })
  const env: Partial<SessionEnvironment> = {
    fetch: async (url) => {
      if (url.endsWith('/api/session_state')) stateReads++
      const body = url.endsWith('/api/auth/csrf') ? { csrfToken: 'csrf' } : state
      return new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/json' } })
    },
    socket: () => {
      const socket = new FakeSocket()
      sockets.push({ socket, openedAt: Date.now() })
      setImmediate(() => server.serve(socket))
      return socket
    },
    storage: null,
    channel: undefined,
    window,
    document,
    online: () => true,
    random,
  }
  const client = createSessionClient({ baseUrl: 'http://tessera.test', compat: false, env })
  t.teardown(() => client.stop())
  t.ok(await client.start(), 'started')
  const wakeUp = () => {
    window.dispatchEvent(new Event('online'))
    document.visibilityState = 'visible'
    document.dispatchEvent(new Event('visibilitychange'))
  }
  return { client, server, sockets, wakeUp, stateReads: () => stateReads }
}

const liveEnding = (client: SessionClient) => ({ phase: client.phase, ending: client.ending, hasState: client.state !== null })

t.test('control: after an ordinary drop, `online` and a visible page reconnect at once, without the backoff wait', async (t) => {
  // The draw puts the first retry 499 ms away; a socket sooner than that came from retryNow.
  const { client, sockets, wakeUp } = await tab(t, () => 0.999)
  await until('online', () => client.connection === 'online')
  sockets[0]!.socket.shut(CLOSE.goingAway)
  t.equal(client.connection, 'reconnecting')
  wakeUp()
  t.equal(sockets.length, 2, 'a new socket at once')
})

t.test('too many bad messages (4400): no `online`, visibilitychange or later retry ever opens another socket', async (t) => {
  // Guards the spec's "no reconnect after 4400": retryNow on `online` or on a visible page
  // used to open a new socket, because the connection had not been stopped.
  const { client, sockets, wakeUp } = await tab(t, () => 0)
  await until('online', () => client.connection === 'online')
  sockets[0]!.socket.shut(CLOSE.tooManyBadMessages)
  t.equal(client.connection, 'offline')
  wakeUp()
  wakeUp()
  await sleep(BACKOFF.baseMs)
  wakeUp()
  t.equal(sockets.length, 1, 'no socket after the first')
  t.equal(client.connection, 'offline', 'still offline')
  t.same(liveEnding(client), { phase: 'live', ending: null, hasState: true }, 'the session itself is not ended')
  t.equal(client.send({ type: 'ping' }), false, 'nothing to send on')
})

t.test('a final close while the session is valid is retried with the backoff, never in a tight loop', async (t) => {
  // Guards against a server that keeps closing 4401 while HTTP says the session lives: the
  // retry used to be immediate, so the tab looped without pause. The draw 0.2 makes the
  // waits 100, 200, 400, 800 ms (a fifth of 0.5 s · 2^attempt).
  const { client, server, sockets, stateReads } = await tab(t, () => 0.2)
  await until('online', () => client.connection === 'online')
  // From now on the server refuses every socket, as a confused server would.
  server.serve = (socket) => {
    socket.accept()
    socket.shut(CLOSE.unauthenticated)
  }
  const since = Date.now()
  sockets[0]!.socket.shut(CLOSE.unauthenticated)
  await sleep(500)
  const opened = sockets.slice(1).map((s) => s.openedAt - since)
  t.ok(opened.length >= 1, `retried: ${opened.length} sockets in 500 ms`)
  t.ok(opened.length <= 3, `with waits, not in a loop: ${opened.length} sockets in 500 ms, at ${opened.slice(0, 5).join(', ')} ms`)
  for (const [i, ms] of opened.slice(0, 3).entries()) {
    const gap = ms - (i === 0 ? 0 : opened[i - 1]!)
    t.ok(gap >= 100 * 2 ** i - 2, `retry ${i + 1} waited ${gap} ms (the backoff: ${100 * 2 ** i} ms)`)
  }
  t.ok(stateReads() >= 1 + opened.length, 'the server was asked why after each close')
  t.equal(client.connection, 'reconnecting', 'reconnecting while it waits')
  t.same(liveEnding(client), { phase: 'live', ending: null, hasState: true }, 'the session lives on')

  // The reason for the retry: the cookie may name a live session again (signed in meanwhile).
  server.serve = welcomeEach
  await until('welcomed again', () => client.connection === 'online', 5000)
  t.pass('the retry brings the tab back once the server accepts the socket')
})
