// What every load generator does with tabs: open one (upgrade with the session cookie,
// `hello`, `welcome`) in Tessera's protocol or Socket.IO's, and run jobs a few at a time.
import WebSocket from 'ws'
import { ORIGIN, USER_AGENT } from './load-process.js'

export type Frame = { type: string; seq?: number; platform?: { id: number } | null }

/** A frame this side sends. */
export type Hello = { type: string; [field: string]: unknown }

export interface Opened {
  ws: WebSocket
  welcome: Frame
  /** From `new WebSocket` to `welcome`. */
  handshakeMs: number
}

/**
 * The servers a load generator can drive: Tessera's protocol (also the bare baseline's), or
 * Socket.IO's over its WebSocket transport (Engine.IO v4 packets spoken by hand, so the
 * same generator measures all three): `0` open → `40` connect → `40{sid}` → the hello as
 * an event; events arrive as `42["type",{…}]`; pings `2` are answered `3`.
 */
export type Dialect = 'tessera' | 'socket.io'

/** Sends a frame in the dialect: a Socket.IO event carries the type as its name. */
export function sendFrame(ws: WebSocket, dialect: Dialect, frame: Hello) {
  if (dialect === 'tessera') return ws.send(JSON.stringify(frame))
  const { type, ...payload } = frame
  ws.send(`42${JSON.stringify([type, payload])}`)
}

/** A received message as a frame, answering Engine.IO's own packets on the way; null when it was one of those. */
function readFrame(ws: WebSocket, dialect: Dialect, text: string, onConnected: () => void): Frame | null {
  if (dialect === 'tessera') return JSON.parse(text) as Frame
  if (text === '2') ws.send('3')
  else if (text[0] === '0') ws.send('40')
  else if (text.startsWith('40')) onConnected()
  else if (text.startsWith('42')) {
    const [type, payload] = JSON.parse(text.slice(2)) as [string, object]
    return { ...payload, type }
  }
  return null
}

export interface TabOptions {
  timeoutMs?: number
  dialect?: Dialect
  /** The source address: one loopback address has about 28,000 ephemeral ports, so 50,000 sockets (P9) need two or more (127.0.0.2, …). */
  localAddress?: string
}

/**
 * The loopback source address of the `n`-th socket, 25,000 to an address: the default
 * (127.0.0.1), then 127.0.0.2, … The first 25,000 name none: a socket bound to an address
 * before it connects gets a port no other socket holds, not even one in TIME_WAIT, so a churn
 * just before (tens of thousands of closed sockets) would leave none free. Left to connect,
 * the kernel reuses such ports on loopback (net.ipv4.tcp_tw_reuse).
 */
export const loopbackSource = (n: number) => (n < 25_000 ? undefined : `127.0.0.${1 + Math.floor(n / 25_000)}`)

/**
 * Opens a tab. `onFrame` sees every frame (welcome included) with the time it arrived,
 * taken before parsing. Rejects when the upgrade is refused or no welcome comes in time.
 */
export function openTab(address: string, cookie: string, hello: Hello, onFrame: (f: Frame, at: number) => void, options: TabOptions = {}): Promise<Opened> {
  const { timeoutMs = 20_000, dialect = 'tessera', localAddress } = options
  const t0 = performance.now()
  const url = dialect === 'tessera' ? `ws://${address}/ws` : `ws://${address}/socket.io/?EIO=4&transport=websocket`
  const ws = new WebSocket(url, { headers: { cookie, origin: ORIGIN, 'user-agent': USER_AGENT }, perMessageDeflate: false, localAddress })
  const sendHello = () => sendFrame(ws, dialect, hello)
  return new Promise((resolve, reject) => {
    let welcomed = false
    const fail = (err: Error) => {
      clearTimeout(timer)
      ws.terminate()
      reject(err)
    }
    const timer = setTimeout(() => fail(new Error(`no welcome within ${timeoutMs} ms`)), timeoutMs)
    if (dialect === 'tessera') ws.once('open', sendHello)
    ws.once('unexpected-response', (_req, res) => fail(new Error(`upgrade refused: HTTP ${res.statusCode}`)))
    ws.on('error', (err) => {
      if (!welcomed) fail(err)
    })
    ws.on('message', (data) => {
      const at = performance.now()
      const frame = readFrame(ws, dialect, data.toString(), sendHello)
      if (!frame) return
      if (!welcomed && frame.type === 'welcome') {
        welcomed = true
        clearTimeout(timer)
        resolve({ ws, welcome: frame, handshakeMs: at - t0 })
      }
      onFrame(frame, at)
    })
  })
}

/** Runs `job` over `items` with at most `concurrency` at once. */
export async function pool<T>(items: T[], concurrency: number, job: (item: T) => Promise<void>) {
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      for (let i = next++; i < items.length; i = next++) await job(items[i]!)
    }),
  )
}

/** Closes sockets with a close frame, and terminates those that do not answer within 5 s. */
export function closeSockets(all: WebSocket[]): Promise<void> {
  return Promise.all(
    all.map(
      (ws) =>
        new Promise<void>((resolve) => {
          if (ws.readyState === WebSocket.CLOSED) return resolve()
          const timer = setTimeout(() => {
            ws.terminate()
            resolve()
          }, 5000)
          ws.once('close', () => {
            clearTimeout(timer)
            resolve()
          })
          ws.close(1000)
        }),
    ),
  ).then(() => undefined)
}
