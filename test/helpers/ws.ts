// Real WebSocket tabs against a listening app.
import type { AddressInfo } from 'node:net'
import WebSocket from 'ws'
import type { TestApp } from './app.js'

export async function listen(app: Pick<TestApp, 'app'>): Promise<string> {
  await app.app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.app.server.address() as AddressInfo
  return `127.0.0.1:${port}`
}

export type Message = { type: string; seq?: number; [k: string]: unknown }

export class TabClient {
  readonly messages: Message[] = []
  /** Frames that came as binary (the protocol has none). */
  binaryFrames = 0
  readonly closed: Promise<{ code: number; reason: string }>
  private waiters: (() => void)[] = []

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      if (isBinary) this.binaryFrames++
      this.messages.push(JSON.parse(data.toString()))
      for (const w of this.waiters.splice(0)) w()
    })
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })))
  }

  send(message: unknown) {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message))
  }

  /** Waits for the first message (from `from` on) that matches; fails after `ms`. */
  async next(match: (m: Message) => boolean, ms = 5000, from = 0): Promise<Message> {
    const deadline = Date.now() + ms
    for (;;) {
      const found = this.messages.slice(from).find(match)
      if (found) return found
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no matching message within ${ms} ms; got ${JSON.stringify(this.messages).slice(0, 800)}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  /** The logged event with this seq (`welcome` carries the current seq too: it does not count). */
  event(seq: number, ms?: number) {
    return this.next((m) => m.seq === seq && m.type !== 'welcome', ms)
  }

  type(type: string, ms?: number) {
    return this.next((m) => m.type === type, ms)
  }

  /** The logged events received so far (those with a seq). */
  logged(): Message[] {
    return this.messages.filter((m) => typeof m.seq === 'number' && m.type !== 'welcome' && m.type !== 'session.state')
  }

  close() {
    this.ws.close()
    return this.closed
  }
}

/** Opens a socket; resolves when it is open, or rejects with the refusal's HTTP status. */
export function connect(address: string, opts: { cookie?: string; origin?: string; query?: string; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { origin: opts.origin ?? 'http://localhost:3000', 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0 Safari/537.36', ...opts.headers }
  if (opts.cookie) headers.cookie = opts.cookie
  const ws = new WebSocket(`ws://${address}/ws${opts.query ?? ''}`, { headers })
  const tab = new TabClient(ws)
  return new Promise<TabClient>((resolve, reject) => {
    ws.once('open', () => resolve(tab))
    ws.once('unexpected-response', (_req, res) => {
      let body = ''
      res.on('data', (c: Buffer) => (body += c))
      res.on('end', () => reject(Object.assign(new Error(`refused ${res.statusCode}`), { status: res.statusCode, body })))
    })
    ws.once('error', reject)
  })
}

/** Opens a tab of a signed-in client and completes hello → welcome. */
export async function openTab(
  address: string,
  sid: string,
  hello: { tabId: string; view?: string; lastSeq?: number },
  opts: { origin?: string; headers?: Record<string, string> } = {},
) {
  const tab = await connect(address, { cookie: `sid=${sid}`, ...opts })
  tab.send({ type: 'hello', view: '/', ...hello })
  const welcome = await tab.type('welcome')
  return { tab, welcome }
}
