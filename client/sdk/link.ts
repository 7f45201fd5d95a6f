// The tab's link to the server: the socket (reconnected with backoff), its heartbeat, and,
// while it is down, the session_state polling that shows whether the session still lives.
import { CLOSE, type SessionState } from '../../src/realtime/protocol.js'
import { Connection } from './connection.js'
import type { SessionEnvironment } from './environment.js'
import type { Http } from './http.js'
import type { Connectivity } from './types.js'

/** Close codes after which the session is gone: the server is asked why, nothing reconnects. */
const GONE_CODES: readonly number[] = [CLOSE.terminated, CLOSE.expired, CLOSE.loggedOut, CLOSE.unauthenticated]

/** What the link needs of the client it serves. */
export interface LinkHost {
  hello(): { type: 'hello'; tabId: string; view: string; lastSeq: number }
  heartbeat(): { type: 'heartbeat'; view: string; lastInputAt?: number }
  frame(data: string): void
  /** The socket closed with a code after which the session is gone (4001, 4002, 4003, 4401). */
  gone(code: number): void
  connection(state: Connectivity): void
  /** A state read while the socket was down. */
  polled(state: SessionState): void
  /** A refusal of the session (401) ends the client; true when this error was one. */
  refused(err: unknown): boolean
}

export class Link {
  private readonly socket: Connection
  private heartbeatMs = 30_000
  private syncCheckMs = 2_000
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined
  private pollTimer: ReturnType<typeof setTimeout> | undefined
  private stopped = false

  constructor(
    private readonly host: LinkHost,
    private readonly env: SessionEnvironment,
    private readonly http: Http,
    url: string,
  ) {
    this.socket = new Connection(
      () => env.socket(url),
      { open: () => this.socket.send(host.hello()), message: (data) => host.frame(data), closed: (code) => this.closed(code) },
      env.random,
    )
  }

  get isOpen(): boolean {
    return this.socket.isOpen
  }

  start(): void {
    this.socket.connect()
    this.env.window?.addEventListener('online', this.onOnline)
    this.env.window?.addEventListener('offline', this.onOffline)
    this.env.document?.addEventListener('visibilitychange', this.onVisible)
  }

  /** For good. Safe to call twice. */
  stop(): void {
    this.stopped = true
    this.socket.stop()
    clearInterval(this.heartbeatTimer)
    this.stopPolling()
    this.env.window?.removeEventListener('online', this.onOnline)
    this.env.window?.removeEventListener('offline', this.onOffline)
    this.env.document?.removeEventListener('visibilitychange', this.onVisible)
  }

  /** The server welcomed the socket: heartbeats at its pace, polling over, backoff reset. */
  welcomed(heartbeatMs: number, syncCheckMs: number | undefined): void {
    this.socket.succeeded()
    if (syncCheckMs) this.syncCheckMs = syncCheckMs
    this.stopPolling()
    this.host.connection('online')
    this.beat(heartbeatMs)
  }

  /** Heartbeats every `ms` (the settings changed, or the server welcomed the socket). */
  beat(ms: number): void {
    this.heartbeatMs = ms
    clearInterval(this.heartbeatTimer)
    this.heartbeatTimer = setInterval(() => this.socket.send(this.host.heartbeat()), this.heartbeatMs)
  }

  send(message: object): boolean {
    return this.socket.send(message)
  }

  /** Drops the socket and opens another at once (to resume after a gap). */
  restart(): void {
    this.socket.restart()
  }

  /**
   * Reconnects after the backoff's wait: a final close, yet the session lives (the browser
   * signed in again meanwhile). Never at once, so a server that keeps closing cannot make a loop.
   */
  retryLater(): void {
    if (this.socket.retryLater()) this.host.connection(this.offline() ? 'offline' : 'reconnecting')
  }

  private closed(code: number): boolean {
    clearInterval(this.heartbeatTimer)
    if (this.stopped) return false
    if (GONE_CODES.includes(code)) {
      this.host.gone(code)
      return false
    }
    if (code === CLOSE.tooManyBadMessages) {
      // A client bug: reconnecting would only repeat it. Stopped for good, so neither `online`
      // nor a visible page opens another socket; the session lives on (a reload makes a new client).
      this.socket.stop()
      this.host.connection('offline')
      return false
    }
    this.host.connection(this.offline() ? 'offline' : 'reconnecting')
    if (!this.pollTimer) this.poll()
    return true
  }

  /** While the socket is down: the state over HTTP, which also tells whether the session ended. */
  private poll(): void {
    clearTimeout(this.pollTimer)
    this.pollTimer = setTimeout(() => this.poll(), this.syncCheckMs)
    this.http.request<SessionState>('GET', '/api/session_state').then(
      (state) => {
        if (!this.pollTimer) return
        this.host.polled(state)
        this.host.connection('reconnecting')
      },
      (err) => {
        // Unreachable is "offline" only when the browser says the network is gone.
        if (!this.host.refused(err) && this.pollTimer) this.host.connection(this.offline() ? 'offline' : 'reconnecting')
      },
    )
  }

  private stopPolling(): void {
    clearTimeout(this.pollTimer)
    this.pollTimer = undefined
  }

  private offline(): boolean {
    return this.env.online?.() === false
  }

  private readonly onOnline = () => {
    if (this.socket.isOpen) this.host.connection('online')
    this.socket.retryNow()
    if (this.pollTimer) this.poll()
  }
  private readonly onOffline = () => this.host.connection('offline')
  private readonly onVisible = () => {
    if (this.env.document?.visibilityState === 'visible') this.socket.retryNow()
  }
}
