// The session client of one tab: the state of its session, kept in step with the server
// (socket events in seq order) and with the browser's other tabs (BroadcastChannel).
import {
  CLOSE,
  type LoggedMessage,
  type Platform,
  type ServerMessage,
  type SessionState,
  type SessionView,
  type Upload,
} from '../../src/realtime/protocol.js'
import { InputTracker } from './activity.js'
import { type CachedState, readCache, writeCache } from './cache.js'
import type { SessionError } from './errors.js'
import { endingOfClose, endingOfRefusal } from './endings.js'
import { Emitter } from './emitter.js'
import { applyEvent, verdict } from './events.js'
import { browserEnvironment, type ChannelLike, type SessionEnvironment } from './environment.js'
import { Http } from './http.js'
import { Link, type LinkHost } from './link.js'
import { singleFlight } from './switching.js'
import type { TabMessage } from './tab-messages.js'
import type { Connectivity, Ending, Expired, IdleWarning, Phase, SessionClientOptions, SessionEvents, Terminated } from './types.js'

interface Overlay {
  platform: Platform | null
  startedAt: number
  /** Another tab's switch: dropped if its outcome is never heard (that tab closed). */
  expires: number
}

const SWITCH_LOCK = 'tessera:switch'
const CHANNEL = 'tessera'
/** A switch of another tab whose outcome never arrives is forgotten after this long. */
const FOREIGN_SWITCH_MS = 15_000
const _GONE_CODES: readonly number[] = [CLOSE.terminated, CLOSE.expired, CLOSE.loggedOut, CLOSE.unauthenticated]

/** localStorage, or null where reading it throws (storage disabled). */
const randomId = () => globalThis.crypto.randomUUID()

export class SessionClient {
  /** This tab's id: in memory only, so a duplicated tab never shares it. */
  readonly tabId = randomId()
  phase: Phase = 'idle'
  connection: Connectivity = 'reconnecting'
  /** The last state the server confirmed. */
  confirmed: SessionState | null = null
  /** What a new tab may show before the server answers (see cache.ts). */
  readonly cached: CachedState | null
  idleWarning: IdleWarning | null = null
  ending: Ending | null = null
  platforms: Platform[] = []
  debug = false

  private readonly env: SessionEnvironment
  private readonly http: Http
  private readonly events = new Emitter<SessionEvents>()
  private readonly channel: ChannelLike | null
  private readonly tracker: InputTracker
  private readonly held = new Set<string>()
  private link: Link | null = null
  private starting: Promise<SessionState | null> | undefined
  private overlay: Overlay | null = null
  private lastSeq = 0
  private sentInputAt = 0
  private syncTimer: ReturnType<typeof setTimeout> | undefined
  private counts = { events: 0, duplicates: 0, gaps: 0, resyncs: 0, reconnects: 0, welcomes: 0 }
  private lastEventLatencyMs: number | null = null
  private lastSwitch: { optimisticMs: number | null; confirmedMs: number | null } | null = null

  constructor(private readonly options: SessionClientOptions = {}) {
    this.env = { ...browserEnvironment(), ...options.env }
    this.http = new Http(options.baseUrl ?? '', this.env.fetch, this.tabId)
    this.cached = readCache(this.env.storage ?? null)
    this.channel = this.env.channel?.(CHANNEL) ?? null
    if (this.channel) this.channel.onmessage = (event) => this.fromTab(event.data as TabMessage)
    // Input while the server says the session is idle is reported at once: the user is back.
    const idle = () => this.confirmed?.session.status === 'idle' || this.idleWarning !== null
    this.tracker = new InputTracker((at) => this.reportInput(at), this.env.window, this.env.document, undefined, idle)
  }

  /** The session's state as this tab shows it: the server's, with a pending switch on top. */
  get state(): SessionState | null {
    const base = this.confirmed
    return base && this.overlay ? { ...base, platform: this.overlay.platform } : base
  }

  /** The platform a pending switch (of any tab) goes to, while it is pending. */
  get pendingSwitch(): { platform: Platform | null } | null {
    return this.overlay && { platform: this.overlay.platform }
  }

  on<K extends keyof SessionEvents>(type: K, listener: (detail: SessionEvents[K]) => void): () => void {
    return this.events.on(type, listener)
  }

  /** Syncs the state, opens the socket and starts idle tracking; null when nobody is signed in. */
  start(): Promise<SessionState | null> {
    this.starting ??= this.begin().catch((err) => {
      this.starting = undefined
      throw err
    })
    return this.starting
  }

  async signIn(username: string, password: string, extra: { platformId?: number; endSessionId?: string } = {}): Promise<SessionState | null> {
    const res = await this.http.request<{ csrfToken: string }>('POST', '/api/auth/login', { username, password, ...extra }, { csrf: false })
    this.http.csrfToken = res.csrfToken
    this.stopLive()
    this.starting = undefined
    this.ending = null
    this.post({ k: 'signedIn' })
    return this.start()
  }

  /** Any request to the API, with this tab's id and the CSRF token. */
  request<T>(method: string, path: string, body?: unknown): Promise<T> {
    return this.http.request<T>(method, path, body).catch((err) => this.refusedThenThrow(err))
  }

  async listPlatforms(): Promise<Platform[]> {
    this.platforms = (await this.request<{ items: Platform[] }>('GET', '/api/platforms')).items
    this.changed()
    return this.platforms
  }

  /** Single-flight across the browser's tabs, shown at once everywhere, reverted everywhere on failure. */
  switchPlatform(platformId: number): Promise<Platform | null> {
    const current = this.state?.platform ?? null
    if (current?.id === platformId && !this.overlay) return Promise.resolve(current)
    return singleFlight(this.env.locks, this.held, SWITCH_LOCK, async () => {
      const target = this.platforms.find((p) => p.id === platformId) ?? null
      const startedAt = Date.now()
      this.overlay = { platform: target, startedAt, expires: Number.POSITIVE_INFINITY }
      this.lastSwitch = { optimisticMs: 0, confirmedMs: null }
      this.post({ k: 'switching', platform: target, startedAt })
      this.changed()
      try {
        const res = await this.request<{ platform: Platform | null; version: number }>('POST', `/api/switch_platform/${platformId}`)
        const before = this.confirmed
        if (before && res.version > before.version) {
          this.confirm({ ...before, platform: res.platform, version: res.version })
          this.emit('platformSwitched', { platform: res.platform, previousPlatform: before.platform, version: res.version, byTabId: this.tabId })
        }
        this.settleSwitch({ k: 'switched', ok: true, platformId })
        return res.platform
      } catch (err) {
        const { code, message } = err as SessionError
        this.settleSwitch({ k: 'switched', ok: false, platformId, error: { code, message } })
        throw err
      }
    })
  }

  /** For pages that switch with their own request (the SessionSync API): show it, then confirm. */
  async notifyPlatformSwitch(platformId: number, name: string): Promise<SessionState | null> {
    const known = this.platforms.find((p) => p.id === platformId)
    const platform = known ?? { id: platformId, name, type: 'other' as const, instanceUrl: '', isDefault: false }
    this.fromTab({ k: 'switching', platform, startedAt: Date.now() })
    this.post({ k: 'switching', platform, startedAt: Date.now() })
    return this.sync()
  }

  /** Fetches the state now (GET /api/session_state). */
  async sync(): Promise<SessionState | null> {
    const state = await this.request<SessionState>('GET', '/api/session_state')
    // Not older than what the socket already applied (a frame may have overtaken the answer).
    if (!this.confirmed || (state.version >= this.confirmed.version && state.seq >= this.lastSeq)) this.confirm(state)
    return this.state
  }

  validate(): Promise<{ valid: true; session: { id: string; status: string; expiresAt: string; idleExpiresAt: string } }> {
    return this.request('POST', '/api/session/validate')
  }

  listSessions(): Promise<{ items: (SessionView & { current: boolean })[] }> {
    return this.request('GET', '/api/sessions')
  }

  /** Uploads a PDF to this session (POST /api/session/uploads), reporting progress from 0 to 1. */
  uploadFile(file: Blob, name: string, onProgress?: (fraction: number) => void): Promise<Upload> {
    return this.http.upload<Upload>('/api/session/uploads', file, name, onProgress).catch((err) => this.refusedThenThrow(err))
  }

  listUploads(): Promise<{ items: Upload[] }> {
    return this.request('GET', '/api/session/uploads')
  }

  revokeSession(id: string): Promise<void> {
    return this.request('DELETE', `/api/sessions/${encodeURIComponent(id)}`)
  }

  async logout(): Promise<void> {
    await this.request('POST', '/api/auth/logout').catch((err) => {
      if (!this.ending) throw err
    })
    this.end({ kind: 'loggedOut', byTabId: this.tabId })
  }

  /** Ends every session of the user, this one included. */
  async logoutEverywhere(): Promise<number> {
    const res = await this.request<{ terminatedSessions: number }>('POST', '/api/auth/logout-all').catch((err) => {
      if (!this.ending) throw err
      return { terminatedSessions: 0 }
    })
    this.end({ kind: 'loggedOut', byTabId: this.tabId })
    return res.terminatedSessions
  }

  /** The answer to an idle warning: counts as input in every tab of the session. */
  stayActive(): void {
    this.idleWarning = null
    this.tracker.input(Date.now(), true)
    this.post({ k: 'stay' })
    this.changed()
  }

  /** The tab navigated. */
  setView(view: string): void {
    this.link?.send({ type: 'view', view: view.slice(0, 200) })
  }

  /** Sends any client message (admins use it for `admin.subscribe`); false while the socket is down. */
  send(message: { type: string; [field: string]: unknown }): boolean {
    return this.link?.send(message) ?? false
  }

  metrics() {
    return { ...this.counts, lastSeq: this.lastSeq, lastEventLatencyMs: this.lastEventLatencyMs, lastSwitch: this.lastSwitch, connection: this.connection, phase: this.phase }
  }

  /** Closes the socket and stops every timer and listener. Safe to call twice. */
  stop(): void {
    this.stopLive()
    this.channel?.close()
  }

  private async begin(): Promise<SessionState | null> {
    this.setPhase('starting')
    try {
      const state = await this.http.request<SessionState>('GET', '/api/session_state')
      if (!this.http.csrfToken) await this.http.refreshCsrf()
      this.confirm(state)
    } catch (err) {
      this.starting = undefined
      if (this.refused(err)) return null
      throw err
    }
    this.lastSeq = this.confirmed!.seq
    this.goLive()
    return this.state
  }

  private goLive(): void {
    this.setPhase('live')
    this.link = new Link(this.linkHost, this.env, this.http, this.socketUrl())
    this.link.start()
    this.tracker.start()
    this.env.window?.addEventListener('pagehide', this.onLeave)
    this.env.window?.addEventListener('hashchange', this.onNavigate)
    this.env.window?.addEventListener('popstate', this.onNavigate)
  }

  private stopLive(): void {
    this.link?.stop()
    this.link = null
    this.tracker.stop()
    this.env.window?.removeEventListener('pagehide', this.onLeave)
    this.env.window?.removeEventListener('hashchange', this.onNavigate)
    this.env.window?.removeEventListener('popstate', this.onNavigate)
    clearTimeout(this.syncTimer)
  }

  /** What the link to the server asks of this client. */
  private readonly linkHost: LinkHost = {
    hello: () => ({ type: 'hello', tabId: this.tabId, view: this.view(), lastSeq: this.lastSeq }),
    heartbeat: () => {
      const input = this.tracker.lastInputAt > this.sentInputAt ? this.tracker.lastInputAt : undefined
      if (input) this.sentInputAt = input
      return { type: 'heartbeat', view: this.view(), ...(input ? { lastInputAt: input } : {}) }
    },
    frame: (data) => this.receive(data),
    gone: (code) => void this.learnWhyEnded(code),
    connection: (state) => this.setConnection(state),
    polled: (state) => {
      if (this.confirmed && state.version > this.confirmed.version) this.confirm(state)
    },
    refused: (err) => this.refused(err),
  }

  private readonly onLeave = () => this.post({ k: 'left' })
  /** The page moved to another view (hash or history navigation). */
  private readonly onNavigate = () => this.setView(this.view())

  private socketUrl(): string {
    const base = this.options.baseUrl || (globalThis as { location?: { href: string; pathname: string; hash: string } }).location?.href || 'http://localhost/'
    const url = new URL('/ws', base)
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:'
    return url.href
  }

  private view(): string {
    const fallback = () => {
      const where = (globalThis as { location?: { href: string; pathname: string; hash: string } }).location
      return where ? where.pathname + where.hash : '/'
    }
    return (this.options.view ?? fallback)().slice(0, 200)
  }

  private receive(data: string): void {
    let message: ServerMessage
    try {
      message = JSON.parse(data) as ServerMessage
    } catch {
      return
    }
    if (this.debug) console.debug('[tessera] ←', message)
    switch (message.type) {
      case 'welcome':
        this.welcomed(message)
        return
      case 'user.notice':
        this.emit('notice', message)
        return
      case 'locks.released':
        this.emit('locksReleased', message)
        return
      case 'lock.acquired':
        this.emit('lockAcquired', message)
        return
      case 'config.changed':
        this.link?.beat(message.heartbeatIntervalMs)
        return
      case 'admin.snapshot':
      case 'admin.delta':
      case 'admin.alert':
        this.emit('admin', message)
        return
      case 'pong':
      case 'error':
        return
      default:
        this.logged(message)
        return
    }
  }

  private welcomed(message: Extract<ServerMessage, { type: 'welcome' }>): void {
    if (this.counts.welcomes++ > 0) this.counts.reconnects++
    else this.post({ k: 'joined' })
    // Resumed: the missed events follow and move lastSeq on; else welcome.seq is the baseline.
    if (!message.resumed) this.lastSeq = message.seq
    this.confirm(message.state)
    this.link?.welcomed(message.heartbeatIntervalMs, message.syncCheckIntervalMs)
    if (this.tracker.lastInputAt > this.sentInputAt) this.reportInput(this.tracker.lastInputAt)
  }

  private logged(message: LoggedMessage): void {
    const next = verdict(message, this.lastSeq)
    if (next === 'duplicate') {
      this.counts.duplicates++
      return
    }
    if (next === 'resume') {
      // Events are missing before this one: reconnect, and the resume replays them.
      this.counts.gaps++
      this.link?.restart()
      return
    }
    this.counts.events++
    this.lastEventLatencyMs = Date.now() - Date.parse(message.at)
    this.lastSeq = message.seq
    switch (message.type) {
      case 'session.expired':
        this.end({ kind: 'expired', reason: message.reason })
        return
      case 'session.terminated':
        this.end({ kind: 'terminated', reason: message.reason, message: message.message, ...(message.note ? { note: message.note } : {}) })
        return
      case 'session.logged_out':
        this.end({ kind: 'loggedOut', byTabId: message.byTabId })
        return
    }
    if (!this.confirmed) return
    const before = this.confirmed
    if (message.type === 'session.state' && message.resync) this.counts.resyncs++
    if (message.type === 'session.idle_warning') {
      this.idleWarning = { secondsLeft: message.secondsLeft, expiresAt: message.expiresAt }
      this.emit('idleWarning', this.idleWarning)
    }
    if (message.type === 'session.active') {
      this.idleWarning = null
      // The event does not say when the session now idles out; the state does.
      this.syncSoon(100)
    }
    this.confirm(applyEvent(before, message))
    if (message.type === 'platform.switched' && message.version > before.version) {
      const { platform, previousPlatform, version, byTabId } = message
      this.emit('platformSwitched', { platform, previousPlatform, version, byTabId })
    }
  }

  /** Takes a state from the server; a platform change in it settles any pending switch. */
  private confirm(state: SessionState): void {
    const before = this.confirmed
    this.confirmed = state
    if (this.overlay && before && state.platform?.id !== before.platform?.id) this.settleOverlay()
    writeCache(this.env.storage ?? null, state)
    this.emit('state', this.state!)
    this.changed()
  }

  private settleOverlay(): void {
    if (this.overlay && this.lastSwitch && this.lastSwitch.confirmedMs === null) this.lastSwitch.confirmedMs = Date.now() - this.overlay.startedAt
    this.overlay = null
  }

  private settleSwitch(message: Extract<TabMessage, { k: 'switched' }>): void {
    this.post(message)
    this.fromTab(message)
  }

  /**
   * The socket closed for good without its terminal event: the server says why over HTTP.
   * A session that still lives (signed in again meanwhile) is reconnected to with backoff.
   */
  private async learnWhyEnded(code: number): Promise<void> {
    try {
      await this.http.request('GET', '/api/session_state')
      this.link?.retryLater()
    } catch (err) {
      if (!this.refused(err)) this.end(endingOfClose(code))
    }
  }

  /** A 401 about the session ends this client with the server's reason; true when it did. */
  private refused(err: unknown): boolean {
    const ending = endingOfRefusal(err, this.phase === 'live')
    if (!ending) return false
    if (ending !== 'signedOut') this.end(ending)
    else {
      // Nobody is signed in behind this cookie (or it was a signed-out one): the sign-in page.
      this.stopLive()
      this.setPhase('signedOut')
    }
    return true
  }

  private refusedThenThrow(err: unknown): never {
    this.refused(err)
    throw err
  }

  private end(ending: Ending, fromTab = false): void {
    if (this.ending) return
    this.ending = ending
    this.stopLive()
    this.starting = undefined
    this.overlay = null
    this.idleWarning = null
    this.confirmed = null
    this.platforms = []
    writeCache(this.env.storage ?? null, null)
    if (!fromTab) this.post({ k: 'ended', ending })
    this.setPhase('ended')
    const { kind, ...detail } = ending
    if (kind === 'expired') this.options.onExpired?.(detail as Expired)
    if (kind === 'terminated') this.options.onTerminated?.(detail as Terminated)
    this.emit(kind, detail as never)
  }

  private fromTab(message: TabMessage): void {
    if (this.debug) console.debug('[tessera] tab ←', message)
    switch (message.k) {
      case 'switching':
        this.overlay = { platform: message.platform, startedAt: message.startedAt, expires: Date.now() + FOREIGN_SWITCH_MS }
        this.lastSwitch = { optimisticMs: Date.now() - message.startedAt, confirmedMs: null }
        setTimeout(() => this.forgetForeignSwitch(), FOREIGN_SWITCH_MS)
        break
      case 'switched':
        if (!message.ok) this.emit('switchFailed', { platformId: message.platformId, error: message.error! })
        // A success is settled by the platform change in the confirmed state, which may come a moment later.
        if (!message.ok || this.confirmed?.platform?.id === message.platformId) this.settleOverlay()
        break
      case 'ended':
        this.end(message.ending, true)
        return
      case 'activity':
        this.tracker.reportedElsewhere(message.at)
        return
      case 'stay':
        this.idleWarning = null
        break
      case 'signedIn':
        this.emit('signedIn', undefined)
        return
      case 'joined':
      case 'left':
        // The server counts the tab once its socket is welcomed or closed: read it a moment later.
        this.syncSoon(message.k === 'joined' ? 300 : 1000)
        return
    }
    this.changed()
  }

  private syncSoon(delayMs: number): void {
    if (this.phase !== 'live') return
    clearTimeout(this.syncTimer)
    this.syncTimer = setTimeout(() => void this.sync().catch(() => {}), delayMs)
  }

  private forgetForeignSwitch(): void {
    if (this.overlay && this.overlay.expires <= Date.now()) {
      this.overlay = null
      this.changed()
    }
  }

  private reportInput(at: number): void {
    if (this.link?.send({ type: 'activity', at })) this.sentInputAt = at
    this.post({ k: 'activity', at })
  }

  private post(message: TabMessage): void {
    this.channel?.postMessage(message)
  }

  private setPhase(phase: Phase): void {
    this.phase = phase
    this.changed()
  }

  private setConnection(connection: Connectivity): void {
    if (this.connection === connection) return
    this.connection = connection
    this.emit('connection', connection)
    this.changed()
  }

  private changed(): void {
    this.emit('change', this)
  }

  private emit<K extends keyof SessionEvents>(type: K, detail: SessionEvents[K]): void {
    this.events.emit(type, detail)
  }
}
