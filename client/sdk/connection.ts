// The socket to /ws: one at a time, reconnected with backoff until stopped.
import { backoffDelay } from './backoff.js'

/** What the SDK needs of a WebSocket (the browser's, or `ws` in Node). */
export interface SocketLike {
  readonly readyState: number
  onopen: ((event: unknown) => void) | null
  onmessage: ((event: { data: unknown }) => void) | null
  onclose: ((event: { code: number }) => void) | null
  onerror: ((event: unknown) => void) | null
  send(data: string): void
  close(code?: number): void
}

export interface ConnectionEvents {
  open(): void
  message(data: string): void
  /** The socket closed with `code`; answer true to reconnect with backoff. */
  closed(code: number): boolean
}

const OPEN = 1

export class Connection {
  private socket: SocketLike | null = null
  private attempt = 0
  private retryTimer: ReturnType<typeof setTimeout> | undefined
  private stopped = false

  constructor(
    private readonly openSocket: () => SocketLike,
    private readonly on: ConnectionEvents,
    private readonly random: () => number = Math.random,
  ) {}

  get isOpen(): boolean {
    return this.socket?.readyState === OPEN
  }

  /** Reconnect attempts since the last welcome. */
  get attempts(): number {
    return this.attempt
  }

  connect(): void {
    clearTimeout(this.retryTimer)
    if (this.stopped || this.socket) return
    const socket = this.openSocket()
    this.socket = socket
    socket.onopen = () => this.on.open()
    socket.onmessage = (event) => {
      if (typeof event.data === 'string') this.on.message(event.data)
    }
    socket.onerror = () => {}
    socket.onclose = (event) => {
      if (this.socket !== socket) return
      this.socket = null
      if (this.on.closed(event.code) && !this.stopped) this.retryLater()
    }
  }

  /** The server welcomed the socket: the next drop starts the backoff from the beginning. */
  succeeded(): void {
    this.attempt = 0
  }

  /** Skips the wait of a pending reconnect (the network came back, the page became visible). */
  retryNow(): void {
    if (!this.socket && !this.stopped) this.connect()
  }

  /** Drops this socket and opens another at once (to resume after a gap). */
  restart(): void {
    const old = this.socket
    this.socket = null
    old?.close(1000)
    this.connect()
  }

  send(message: object): boolean {
    if (!this.socket || this.socket.readyState !== OPEN) return false
    this.socket.send(JSON.stringify(message))
    return true
  }

  /** For good: no reconnect after this. Safe to call twice. */
  stop(): void {
    this.stopped = true
    clearTimeout(this.retryTimer)
    const socket = this.socket
    this.socket = null
    socket?.close(1000)
  }

  /**
   * Reconnects after the backoff's wait; each retry without a welcome between waits longer.
   * False when there is nothing to retry: stopped, or a socket is already open or opening.
   */
  retryLater(): boolean {
    if (this.stopped || this.socket) return false
    clearTimeout(this.retryTimer)
    this.retryTimer = setTimeout(() => this.connect(), backoffDelay(this.attempt++, this.random))
    return true
  }
}
