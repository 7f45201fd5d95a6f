// One open tab: its socket, the protocol state machine (hello → syncing → live), and
// in-order, gap-free delivery of its session's logged events.
import type { FastifyBaseLogger } from 'fastify'
import type { WebSocket } from 'ws'
import type { AuthContext } from '../sessions/service.js'
import { type ClientMessage, type Hello, parseClientMessage } from './messages.js'
import { CLOSE, TERMINAL_CLOSE, WS_ERRORS } from './protocol.js'

/** What a tab needs from the hub: a narrow view, so the tab can be read on its own. */
export interface TabHost {
  readonly log: FastifyBaseLogger
  readonly limits: { maxBadMessages: number; maxBufferedBytes: number; heartbeatIntervalMs: number }
  adopt(tab: Tab): void
  leave(tab: Tab): void
  hello(tab: Tab, hello: Hello): Promise<void>
  handle(tab: Tab, message: ClientMessage): Promise<void>
  sent(type: string, publishedAt: string | undefined): void
  closedByServer(code: number): void
}

type State = 'awaiting-hello' | 'syncing' | 'live' | 'closed'

export class Tab {
  state: State = 'awaiting-hello'
  tabId = ''
  view = ''
  /** The seq of the last logged event this tab has been sent. */
  lastSent = 0
  readonly connectedAt = Date.now()
  lastSeen = Date.now()
  lastInputAt = 0
  adminFilter: unknown = null
  private queued: { seq: number; frame: string; type: string }[] = []
  private badMessages: number[] = []
  /** The handling of the previous message: messages are handled one after another, in order. */
  private handled: Promise<void> = Promise.resolve()

  constructor(
    readonly socket: WebSocket,
    readonly auth: AuthContext,
    private readonly host: TabHost,
    /** The tab's session has ended: it only learns why, then is closed. */
    readonly ended: boolean,
  ) {
    // Attached synchronously, before any await, so no early frame is missed.
    socket.on('message', (data, isBinary) => this.onMessage(isBinary ? null : data.toString()))
    socket.on('pong', () => {
      this.lastSeen = Date.now()
    })
    socket.on('close', () => this.onClose())
    socket.on('error', () => {})
    host.adopt(this)
  }

  get sessionId() {
    return this.auth.session.id
  }

  get userId() {
    return this.auth.session.userId
  }

  private onMessage(raw: string | null) {
    if (this.state === 'closed') return
    this.lastSeen = Date.now()
    const parsed = raw === null ? { ok: false as const, reason: 'frames must be JSON text' } : parseClientMessage(raw)
    if (!parsed.ok) return this.badMessage(parsed.reason)
    const message = parsed.message
    if (this.state === 'awaiting-hello') {
      if (message.type !== 'hello') return this.badMessage('the first message must be hello')
      this.state = 'syncing'
      this.tabId = message.tabId
      this.view = message.view
      this.handled = this.host.hello(this, message).catch((err) => this.fail(err))
      return
    }
    if (message.type === 'hello') return this.badMessage('hello was already received')
    // In order, so that a pong (or any answer) comes only after what was sent before it took effect.
    this.handled = this.handled.then(() => this.host.handle(this, message)).catch((err) => this.fail(err))
  }

  private badMessage(reason: string) {
    const now = Date.now()
    this.badMessages = this.badMessages.filter((t) => now - t < 60_000)
    this.badMessages.push(now)
    this.sendRaw(JSON.stringify({ type: 'error', code: WS_ERRORS.badMessage, message: reason }))
    if (this.badMessages.length >= this.host.limits.maxBadMessages) this.close(CLOSE.tooManyBadMessages, 'too many bad messages')
  }

  error(code: string, message: string) {
    this.sendRaw(JSON.stringify({ type: 'error', code, message }))
  }

  private fail(err: unknown) {
    this.host.log.warn({ err, sessionId: this.sessionId }, 'realtime: tab handling failed')
    this.close(1011, 'internal error')
  }

  /** A logged event from the live channel: queued while syncing, deduplicated by seq. */
  deliverLogged(seq: number, frame: string, type: string, publishedAt?: string) {
    if (this.state === 'syncing') {
      this.queued.push({ seq, frame, type })
      return
    }
    if (this.state !== 'live' || seq <= this.lastSent) return
    this.sendLogged(seq, frame, type, publishedAt)
  }

  /** Sends one logged event; a terminal event closes the socket with its code. */
  sendLogged(seq: number, frame: string, type: string, publishedAt?: string) {
    this.lastSent = Math.max(this.lastSent, seq)
    this.sendRaw(frame)
    this.host.sent(type, publishedAt)
    const code = TERMINAL_CLOSE[type]
    if (code) this.close(code, type)
  }

  /** Frames outside the session log (welcome, notices, broadcasts). */
  deliver(frame: string, type: string, publishedAt?: string) {
    if (this.state !== 'live') return
    this.sendRaw(frame)
    this.host.sent(type, publishedAt)
  }

  /** After a sync: send what arrived meanwhile, in seq order, and go live. */
  goLive() {
    if (this.state !== 'syncing') return
    this.state = 'live'
    const queued = this.queued.sort((a, b) => a.seq - b.seq)
    this.queued = []
    for (const q of queued) if (q.seq > this.lastSent && this.isOpen()) this.sendLogged(q.seq, q.frame, q.type)
  }

  /** Back to syncing (after a Redis reconnect): live frames queue until the gap is filled. */
  resync() {
    if (this.state === 'live') this.state = 'syncing'
  }

  isOpen() {
    return this.state !== 'closed' && this.socket.readyState === this.socket.OPEN
  }

  sendRaw(frame: string) {
    if (!this.isOpen()) return
    this.socket.send(frame)
    // One slow tab must never hold the others back: past the limit it is closed and resumes later.
    if (this.socket.bufferedAmount > this.host.limits.maxBufferedBytes) this.close(CLOSE.slowConsumer, 'slow consumer')
  }

  close(code: number, reason: string) {
    if (this.state === 'closed') return
    this.state = 'closed'
    this.host.closedByServer(code)
    this.socket.close(code, reason)
    this.host.leave(this)
  }

  private onClose() {
    const wasOpen = this.state !== 'closed'
    this.state = 'closed'
    if (wasOpen) this.host.leave(this)
  }
}
