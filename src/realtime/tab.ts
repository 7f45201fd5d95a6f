// One open tab: its socket, the protocol state machine (hello → syncing → live), and
// in-order, gap-free delivery of its session's logged events.
import { randomBytes } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { WebSocket } from 'ws'
import type { AuthContext } from '../sessions/service.js'
import { type ClientMessage, type Hello, parseClientMessage } from './messages.js'
import { dependencyFailure, loggable } from '../infra/errors.js'
import { CLOSE, TERMINAL_CLOSE, WS_ERRORS, SERVER_MESSAGES } from './protocol.js'

/** A frame as written to sockets: fan-out hands every socket the same Buffer. */
export type WireFrame = string | Buffer

/** What a tab needs from the hub: a narrow view, so the tab can be read on its own. */
export interface TabHost {
  readonly log: FastifyBaseLogger
  readonly limits: { maxBadMessages: number; maxBufferedBytes: number; heartbeatIntervalMs: number }
  adopt(tab: Tab): void
  leave(tab: Tab): void
  hello(tab: Tab, hello: Hello): Promise<void>
  handle(tab: Tab, message: ClientMessage): Promise<void>
  /** Fills a gap in what the tab was sent from the session's log, then puts it live again. */
  refill(tab: Tab): Promise<void>
  /** `publishedAt` (ms) only for live frames: their fan-out latency is measured. */
  sent(type: string, publishedAt: number | undefined): void
  closedByServer(code: number): void
  slowConsumer(): void
}

type State = 'awaiting-hello' | 'syncing' | 'live' | 'closed'

interface Queued {
  seq: number
  frame: WireFrame
  type: string
  publishedAt: number | undefined
}

// Socket ids: this process's random prefix and a counter, unique across nodes without
// asking the system for random bytes on every connect.
const socketIdPrefix = randomBytes(9).toString('base64url')
let socketCount = 0
const nextSocketId = () => `${socketIdPrefix}.${(socketCount++).toString(36)}`

export class Tab {
  state: State = 'awaiting-hello'
  tabId = ''
  view = ''
  /** This socket in presence (a reconnected tab has a new one; see presence/service.ts). */
  readonly socketId = nextSocketId()
  /** The seq of the last logged event this tab has been sent. */
  lastSent = 0
  /** Presence holds this socket: its close must remove it. */
  inPresence = false
  /** Which tick of the ping interval pings this socket (set by the hub). */
  pingSlot = 0
  /** The subscriber reconnected while this tab was syncing: sync again from the log once done. */
  refillWanted = false
  readonly connectedAt = Date.now()
  lastSeen = Date.now()
  lastInputAt = 0
  adminFilter: unknown = null
  private queued: Queued[] = []
  /** Frames outside the log that came while syncing, in arrival order: sent after the queued logged ones. */
  private queuedOther: Omit<Queued, 'seq'>[] = []
  private badMessages: number[] = []
  /** The handling of the previous message: messages are handled one after another, in order. */
  private handled: Promise<void> = Promise.resolve()

  constructor(
    readonly socket: WebSocket,
    readonly auth: AuthContext,
    private readonly host: TabHost,
    /** The tab's session had ended at the upgrade: it only learns why, then is closed. */
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
    // In order, so that a pong (or any answer) comes only after what was sent before it took
    // effect; a message still waiting when the socket closes (or its session ended) is dropped.
    this.handled = this.handled
      .then(() => (this.state === 'closed' ? undefined : this.host.handle(this, message)))
      .catch((err) => this.failMessage(err))
  }

  private badMessage(reason: string) {
    const now = Date.now()
    this.badMessages = this.badMessages.filter((t) => now - t < 60_000)
    this.badMessages.push(now)
    this.sendRaw(JSON.stringify({ type: SERVER_MESSAGES.error, code: WS_ERRORS.badMessage, message: reason }))
    if (this.badMessages.length >= this.host.limits.maxBadMessages) this.close(CLOSE.tooManyBadMessages, 'too many bad messages')
  }

  error(code: string, message: string) {
    this.sendRaw(JSON.stringify({ type: SERVER_MESSAGES.error, code, message }))
  }

  private fail(err: unknown) {
    this.host.log.warn({ err: loggable(err), sessionId: this.sessionId }, 'realtime: tab handling failed')
    this.close(CLOSE.internalError, 'internal error')
  }

  /**
   * A message of a live tab failed. When PostgreSQL or Redis is away the socket stays open:
   * the tab is told (error SERVICE_UNAVAILABLE) and the message is dropped.
   */
  private failMessage(err: unknown) {
    const unavailable = dependencyFailure(err)
    if (!unavailable) return this.fail(err)
    this.host.log.warn({ err: loggable(err), sessionId: this.sessionId }, 'realtime: a message could not be handled; the socket stays open')
    this.error(WS_ERRORS.unavailable, unavailable.message)
  }

  /**
   * A logged event from the live channel: queued while syncing, dropped when already sent.
   * One past the next expected seq means events were lost on the way: the tab syncs from
   * the log before it gets this one, so no path can skip an event silently.
   */
  deliverLogged(seq: number, frame: WireFrame, type: string, publishedAt?: number) {
    if (this.state === 'syncing') {
      this.queued.push({ seq, frame, type, publishedAt })
      return
    }
    if (this.state !== 'live' || seq <= this.lastSent) return
    if (seq > this.lastSent + 1) {
      this.state = 'syncing'
      this.queued.push({ seq, frame, type, publishedAt })
      void this.host.refill(this)
      return
    }
    this.sendLogged(seq, frame, type, publishedAt)
  }

  /** Sends one logged event; a terminal event closes the socket with its code. */
  sendLogged(seq: number, frame: WireFrame, type: string, publishedAt?: number) {
    this.lastSent = Math.max(this.lastSent, seq)
    this.sendRaw(frame)
    this.host.sent(type, publishedAt)
    const code = TERMINAL_CLOSE[type]
    if (code) this.close(code, type)
  }

  /**
   * Frames outside the session log (notices, broadcasts, the admin feed): queued while
   * syncing, like logged ones. False when the frame will never reach the socket (closed,
   * or no hello yet).
   */
  deliver(frame: WireFrame, type: string, publishedAt?: number): boolean {
    if (this.state === 'syncing') {
      this.queuedOther.push({ frame, type, publishedAt })
      return true
    }
    if (this.state !== 'live' || !this.isOpen()) return false
    this.sendRaw(frame)
    this.host.sent(type, publishedAt)
    return true
  }

  /** After a sync: send what arrived meanwhile, logged frames in seq order first, and go live. */
  goLive() {
    if (this.state !== 'syncing') return
    this.state = 'live'
    const queued = this.queued.sort((a, b) => a.seq - b.seq)
    this.queued = []
    // Through deliverLogged: a gap between the sync and the queue starts another sync.
    for (const q of queued) if (this.isOpen()) this.deliverLogged(q.seq, q.frame, q.type, q.publishedAt)
    // Through deliver: when a gap started another sync, the rest waits for its end.
    const other = this.queuedOther
    this.queuedOther = []
    for (const q of other) this.deliver(q.frame, q.type, q.publishedAt)
  }

  /** Back to syncing (after a Redis reconnect): live frames queue until the gap is filled. */
  resync() {
    if (this.state === 'live') this.state = 'syncing'
  }

  isOpen() {
    return this.state !== 'closed' && this.socket.readyState === this.socket.OPEN
  }

  sendRaw(frame: WireFrame) {
    if (!this.isOpen()) return
    // Text frames always; a Buffer is written as it is, without encoding it again.
    this.socket.send(frame, { binary: false })
    // One slow tab must never hold the others back: past the limit it is closed and resumes later.
    if (this.socket.bufferedAmount > this.host.limits.maxBufferedBytes) {
      this.host.slowConsumer()
      this.close(CLOSE.slowConsumer, 'slow consumer')
    }
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
