// One browser, simulated in Node for the client SDK: a cookie jar, real `ws` sockets, a
// BroadcastChannel namespace and a lock manager shared by its tabs.
import { randomBytes } from 'node:crypto'
import WebSocket from 'ws'
import { createSessionClient, type SessionClient, type SessionEnvironment } from '../../client/sdk/index.js'
import { MemoryLocks, MemoryStorage } from './browser-apis.js'

const USER_AGENT = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36'
type Socket = ReturnType<SessionEnvironment['socket']>

export class NodeBrowser {
  cookie: string | undefined
  readonly locks = new MemoryLocks()
  readonly storage = new MemoryStorage()
  /** Sockets opened by all tabs, ever. */
  socketsOpened = 0
  /** Every message posted on this browser's channels. */
  readonly channelLog: unknown[] = []
  private readonly id = randomBytes(6).toString('hex')
  private readonly tabs: SessionClient[] = []
  private readonly recorder: BroadcastChannel

  /** `base`: http://host:port of the server. `wrap` may stand between a tab and its socket. */
  constructor(
    readonly base: string,
    private readonly wrap: (socket: Socket) => Socket = (s) => s,
  ) {
    this.recorder = new BroadcastChannel(`${this.id}:tessera`)
    this.recorder.onmessage = (event) => this.channelLog.push(event.data)
  }

  tab(): SessionClient {
    const tab = createSessionClient({ baseUrl: this.base, compat: false, env: this.env() })
    this.tabs.push(tab)
    return tab
  }

  close() {
    for (const tab of this.tabs) tab.stop()
    this.recorder.close()
  }

  private headers(extra: ConstructorParameters<typeof Headers>[0]): Record<string, string> {
    const headers: Record<string, string> = { 'user-agent': USER_AGENT, 'accept-language': 'en-GB,en;q=0.9', ...Object.fromEntries(new Headers(extra)) }
    if (this.cookie) headers.cookie = this.cookie
    return headers
  }

  private env(): Partial<SessionEnvironment> {
    return {
      fetch: async (url, init) => {
        const { credentials: _c, cache: _cache, ...rest } = init
        const res = await fetch(url, { ...rest, headers: this.headers(init.headers) })
        for (const line of res.headers.getSetCookie()) {
          const [pair] = line.split(';')
          const [name, value] = (pair ?? '').split('=')
          if (name === 'sid') this.cookie = value ? `sid=${value}` : undefined
        }
        return res
      },
      socket: (url) => {
        this.socketsOpened++
        return this.wrap(new WebSocket(url, { headers: this.headers(undefined) }) as unknown as Socket)
      },
      locks: this.locks,
      channel: (name) => new BroadcastChannel(`${this.id}:${name}`) as never,
      storage: this.storage,
    }
  }
}
