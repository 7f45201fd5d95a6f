// What every load generator does with tabs: open one (upgrade with the session cookie,
// `hello`, `welcome`), and run jobs a few at a time.
import WebSocket from 'ws'
import { ORIGIN, USER_AGENT } from './load-process.js'

export type Frame = { type: string; seq?: number; platform?: { id: number } | null }

export interface Opened {
  ws: WebSocket
  welcome: Frame
  /** From `new WebSocket` to `welcome`. */
  handshakeMs: number
}

/**
 * Opens a tab. `onFrame` sees every frame (welcome included) with the time it arrived,
 * taken before parsing. Rejects when the upgrade is refused or no welcome comes in time.
 */
export function openTab(address: string, cookie: string, hello: object, onFrame: (f: Frame, at: number) => void, timeoutMs = 20_000): Promise<Opened> {
  const t0 = performance.now()
  const ws = new WebSocket(`ws://${address}/ws`, { headers: { cookie, origin: ORIGIN, 'user-agent': USER_AGENT }, perMessageDeflate: false })
  return new Promise((resolve, reject) => {
    let welcomed = false
    const fail = (err: Error) => {
      clearTimeout(timer)
      ws.terminate()
      reject(err)
    }
    const timer = setTimeout(() => fail(new Error(`no welcome within ${timeoutMs} ms`)), timeoutMs)
    ws.once('open', () => ws.send(JSON.stringify(hello)))
    ws.once('unexpected-response', (_req, res) => fail(new Error(`upgrade refused: HTTP ${res.statusCode}`)))
    ws.on('error', (err) => {
      if (!welcomed) fail(err)
    })
    ws.on('message', (data) => {
      const at = performance.now()
      const frame = JSON.parse(data.toString()) as Frame
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
