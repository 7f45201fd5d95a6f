// The WebSocket hub of one node: which local tabs belong to which session and user, one
// Redis subscription per session that has a tab here, fan-out of each frame to those
// tabs, resume on hello, server pings, and the message handlers.
import type { FastifyBaseLogger } from 'fastify'
import type { Redis } from 'ioredis'
import type { Config } from '../config.js'
import type { RedisKeys } from '../infra/keys.js'
import type { Metrics } from '../infra/metrics.js'
import type { Presence } from '../presence/service.js'
import type { Sessions } from '../sessions/service.js'
import { lastLoggedEvent, readEventLog } from './event-log.js'
import type { ClientMessage, Hello } from './messages.js'
import { CLOSE, TERMINAL_CLOSE, WS_ERRORS } from './protocol.js'
import type { Tab, TabHost } from './tab.js'

export interface HubDeps {
  redis: Redis
  /** A connection of its own, used only for SUBSCRIBE. */
  subscriber: Redis
  keys: RedisKeys
  metrics: Metrics
  config: Config
  sessions: Sessions
  presence: Presence
  log: FastifyBaseLogger
  /** Admin feed hooks (the admin feature plugs in here); `alert` gets each `admin.alert` frame. */
  admin?: { subscribe(tab: Tab, filter: unknown): Promise<void>; unsubscribe(tab: Tab): void; alert?(frame: string): void }
}

/** Sockets pinged per slice of a ping round. */
const PING_SLICE = 500

type Frame = { type: string; seq?: number; at?: string; sessionId?: string }

export class Hub implements TabHost {
  readonly log: FastifyBaseLogger
  readonly limits: TabHost['limits']
  private readonly bySession = new Map<string, Set<Tab>>()
  private readonly byUser = new Map<number, Set<Tab>>()
  private readonly tabs = new Set<Tab>()
  private readonly pingTimer: NodeJS.Timeout
  private subscriberWasReady = false
  private pinging = false
  private closing: Promise<void> | undefined
  private readonly sessionChannel: RegExp
  private readonly userChannel: RegExp

  constructor(private readonly d: HubDeps) {
    this.log = d.log
    this.limits = {
      maxBadMessages: d.config.ws.maxBadMessages,
      maxBufferedBytes: d.config.ws.maxBufferedBytes,
      heartbeatIntervalMs: d.config.heartbeatIntervalSeconds * 1000,
    }
    this.sessionChannel = new RegExp(`^${escapeRegExp(d.keys.prefix)}\\{([^}]+)\\}:events$`)
    this.userChannel = new RegExp(`^${escapeRegExp(d.keys.prefix)}user:(\\d+):events$`)
    d.subscriber.on('message', (channel: string, frame: string) => this.onFrame(channel, frame))
    d.subscriber.on('ready', () => {
      // ioredis re-subscribes by itself after a reconnect; what was published in between is
      // lost to pub/sub, so every tab catches up from its session's log.
      if (this.subscriberWasReady) void this.catchUpAll()
      this.subscriberWasReady = true
    })
    const pingMs = d.config.ws.pingIntervalSeconds * 1000
    this.pingTimer = setInterval(() => void this.pingAll(pingMs), pingMs).unref()
  }

  async start(): Promise<void> {
    if (this.d.subscriber.status === 'ready') this.subscriberWasReady = true
    await this.d.subscriber.subscribe(this.d.keys.broadcastChannel, this.d.keys.adminAlerts)
  }

  get size() {
    return this.tabs.size
  }

  // ── membership ────────────────────────────────────────────────────────────────

  /** Every socket from its upgrade on, so pings and shutdown reach it even before hello. */
  adopt(tab: Tab): void {
    this.tabs.add(tab)
    this.d.metrics.sockets.set(this.tabs.size)
  }

  private async join(tab: Tab): Promise<void> {
    const channels: string[] = []
    if (addTo(this.bySession, tab.sessionId, tab)) channels.push(this.d.keys.sessionChannel(tab.sessionId))
    if (addTo(this.byUser, tab.userId, tab)) channels.push(this.d.keys.userChannel(tab.userId))
    if (channels.length > 0) await this.d.subscriber.subscribe(...channels)
  }

  leave(tab: Tab): void {
    if (!this.tabs.delete(tab)) return
    this.d.metrics.sockets.set(this.tabs.size)
    this.d.admin?.unsubscribe(tab)
    const channels: string[] = []
    if (removeFrom(this.bySession, tab.sessionId, tab)) channels.push(this.d.keys.sessionChannel(tab.sessionId))
    if (removeFrom(this.byUser, tab.userId, tab)) channels.push(this.d.keys.userChannel(tab.userId))
    if (channels.length > 0) this.d.subscriber.unsubscribe(...channels).catch(() => {})
    if (tab.tabId && !tab.ended) this.d.presence.closeTab(tab.sessionId, tab.tabId).then(() => this.adminChanged(tab.sessionId), () => {})
  }

  /** Tabs or view of a session changed: every node's admin feed reloads it (after the write, on the same connection). */
  private adminChanged(sessionId: string) {
    this.d.redis.publish(this.d.keys.adminChanges, sessionId).catch(() => {})
  }

  // ── hello and resume ──────────────────────────────────────────────────────────

  async hello(tab: Tab, hello: Hello): Promise<void> {
    if (tab.ended) return this.explainEnd(tab, hello)
    const { session } = tab.auth
    await this.join(tab)
    await this.d.presence.openTab(session.id, hello.tabId, hello.view, session.expiresAt)
    this.adminChanged(session.id)
    await this.d.sessions.recordView(session, hello.view, hello.tabId)
    const log = hello.lastSeq === undefined ? null : await readEventLog(this.d.redis, this.d.keys, session.id, hello.lastSeq, this.d.config.eventLog.max)
    const current = log?.current ?? Number((await this.d.redis.get(this.d.keys.sessionSeq(session.id))) ?? 0)
    const state = await this.d.sessions.stateOf(tab.auth)
    const settings = tab.auth.settings
    const resumed = log?.complete ?? false
    tab.sendRaw(
      JSON.stringify({
        type: 'welcome',
        sessionId: session.id,
        tabId: hello.tabId,
        seq: current,
        state: { ...state, seq: current },
        heartbeatIntervalMs: this.limits.heartbeatIntervalMs,
        idleAfterMs: settings.idleAfterSeconds * 1000,
        resumed,
        replayed: resumed ? log!.frames.length : 0,
      }),
    )
    tab.lastSent = log?.complete ? hello.lastSeq! : current
    if (log) this.applyLog(tab, log, state)
    tab.goLive()
  }

  /** Sends the replay, or one resync snapshot when the log cannot cover the gap. */
  private applyLog(tab: Tab, log: Awaited<ReturnType<typeof readEventLog>>, state: unknown) {
    if (log.complete) {
      if (log.frames.length > 0) this.d.metrics.resumes.inc()
      for (const f of log.frames) {
        if (!tab.isOpen()) return
        tab.sendLogged(f.seq, f.frame, typeOf(f.frame))
      }
      return
    }
    this.d.metrics.resyncs.inc()
    tab.sendRaw(JSON.stringify({ type: 'session.state', state, resync: true, seq: log.current, at: new Date().toISOString() }))
    tab.lastSent = log.current
  }

  /** A tab of a session that has ended learns why (replayed from the log), then is closed. */
  private async explainEnd(tab: Tab, hello: Hello): Promise<void> {
    const { session } = tab.auth
    const log =
      hello.lastSeq === undefined ? null : await readEventLog(this.d.redis, this.d.keys, session.id, hello.lastSeq, this.d.config.eventLog.max)
    const frames = log?.complete ? log.frames : []
    if (!frames.some((f) => TERMINAL_CLOSE[typeOf(f.frame)])) {
      const last = await lastLoggedEvent(this.d.redis, this.d.keys, session.id)
      frames.splice(0, frames.length, last && TERMINAL_CLOSE[typeOf(last.frame)] ? last : synthesizedEnd(session.endReason ?? 'logout'))
    }
    tab.state = 'live'
    for (const f of frames) if (tab.isOpen()) tab.sendLogged(f.seq, f.frame, typeOf(f.frame))
    if (tab.isOpen()) tab.close(CLOSE.terminated, 'session ended')
  }

  private async catchUpAll(): Promise<void> {
    // Every live tab holds back live frames before the first await: a session whose turn
    // comes later would otherwise be sent a re-subscribed frame past the events it missed.
    const catchUps = [...this.bySession].map(([sessionId, tabs]) => ({ sessionId, live: [...tabs].filter((t) => t.state === 'live') }))
    for (const { live } of catchUps) for (const t of live) t.resync()
    for (const { sessionId, live } of catchUps) {
      if (live.length === 0) continue
      try {
        const from = Math.min(...live.map((t) => t.lastSent))
        const log = await readEventLog(this.d.redis, this.d.keys, sessionId, from, this.d.config.eventLog.max)
        const state = log.complete ? null : await this.d.sessions.stateOf(live[0]!.auth).catch(() => null)
        for (const t of live) {
          if (log.complete) {
            for (const f of log.frames) if (f.seq > t.lastSent && t.isOpen()) t.sendLogged(f.seq, f.frame, typeOf(f.frame))
          } else if (state) {
            this.applyLog(t, log, state)
          } else {
            t.close(CLOSE.slowConsumer, 'resume needed') // its session is gone or unreadable: reconnect and see
          }
          t.goLive()
        }
      } catch (err) {
        this.log.warn({ err, sessionId }, 'realtime: catch-up after reconnect failed')
        for (const t of live) t.close(CLOSE.slowConsumer, 'resume needed')
      }
    }
  }

  // ── messages ──────────────────────────────────────────────────────────────────

  async handle(tab: Tab, m: ClientMessage): Promise<void> {
    const { session } = tab.auth
    switch (m.type) {
      case 'heartbeat':
        if (m.view !== undefined && m.view !== tab.view) {
          tab.view = m.view
          await this.d.sessions.recordView(session, m.view, tab.tabId)
          await this.d.presence.setView(session.id, m.view)
          this.adminChanged(session.id)
        }
        await this.d.presence.seeTab(session.id, tab.tabId, m.view)
        if (m.lastInputAt !== undefined && m.lastInputAt > tab.lastInputAt) await this.input(tab, m.lastInputAt)
        return
      case 'activity':
        return this.input(tab, m.at)
      case 'view':
        if (m.view !== tab.view) await this.d.sessions.recordView(session, m.view, tab.tabId)
        tab.view = m.view
        await this.d.presence.setView(session.id, m.view)
        this.adminChanged(session.id)
        return this.input(tab, Date.now())
      case 'ping':
        tab.sendRaw(JSON.stringify(m.id === undefined ? { type: 'pong' } : { type: 'pong', id: m.id }))
        return
      case 'admin.subscribe': {
        // The role as it is now, not as it was when the socket opened.
        const current = await this.d.sessions.byId(session.id)
        if (current?.role !== 'admin' || current.status !== 'active' || !this.d.admin) {
          return tab.error(WS_ERRORS.forbidden, 'The admin feed is for administrators.')
        }
        return this.d.admin.subscribe(tab, m.filter ?? {})
      }
      case 'admin.unsubscribe':
        this.d.admin?.unsubscribe(tab)
        return
      case 'hello':
        return
    }
  }

  private async input(tab: Tab, at: number) {
    tab.lastInputAt = Math.max(tab.lastInputAt, at)
    await this.d.sessions.recordInput(tab.auth.session, at)
  }

  // ── fan-out ───────────────────────────────────────────────────────────────────

  private onFrame(channel: string, frame: string) {
    let parsed: Frame
    try {
      parsed = JSON.parse(frame) as Frame
    } catch {
      return
    }
    const sessionId = this.sessionChannel.exec(channel)?.[1]
    if (sessionId !== undefined) {
      const tabs = this.bySession.get(sessionId)
      if (!tabs) return
      const seq = parsed.seq ?? 0
      for (const tab of tabs) tab.deliverLogged(seq, frame, parsed.type, parsed.at)
      return
    }
    if (channel === this.d.keys.adminAlerts) {
      this.d.admin?.alert?.(frame)
      return
    }
    if (channel === this.d.keys.broadcastChannel) {
      for (const tab of this.tabs) tab.deliver(frame, parsed.type, parsed.at)
      return
    }
    const userId = Number(this.userChannel.exec(channel)?.[1])
    for (const tab of this.byUser.get(userId) ?? []) {
      // A notice about a session goes to the user's *other* sessions.
      if (tab.sessionId !== parsed.sessionId) tab.deliver(frame, parsed.type, parsed.at)
    }
  }

  sent(type: string, publishedAt: string | undefined) {
    this.d.metrics.eventsDelivered.inc({ type })
    if (publishedAt) this.d.metrics.fanoutLatency.observe(Math.max(0, Date.now() - Date.parse(publishedAt)) / 1000)
  }

  closedByServer(code: number) {
    this.d.metrics.wsCloses.inc({ code: String(code) })
  }

  /** Tabs of one session on this node (tests and the admin feed). */
  tabsOf(sessionId: string): Tab[] {
    return [...(this.bySession.get(sessionId) ?? [])]
  }

  /** The subscriber's `ip:port` as Redis's CLIENT LIST shows it, so a test can kill exactly that connection. */
  subscriberAddress(): string | undefined {
    const { localAddress, localPort } = this.d.subscriber.stream ?? {}
    return localAddress && localPort ? `${localAddress}:${localPort}` : undefined
  }

  // ── liveness ──────────────────────────────────────────────────────────────────

  private async pingAll(pingMs: number) {
    if (this.pinging) return
    this.pinging = true
    try {
      const now = Date.now()
      const tabs = [...this.tabs]
      // In slices, yielding between them: 10,000 pings in one go stall fan-out for half a second.
      for (let i = 0; i < tabs.length; i += PING_SLICE) {
        const alive = this.d.redis.pipeline()
        for (const tab of tabs.slice(i, i + PING_SLICE)) {
          if (now - tab.lastSeen > 2 * pingMs || (tab.state === 'awaiting-hello' && now - tab.connectedAt > 2 * pingMs)) {
            tab.close(CLOSE.heartbeatTimeout, tab.state === 'awaiting-hello' ? 'no hello' : 'no answer to ping')
            continue
          }
          if (tab.isOpen()) tab.socket.ping()
          if (tab.state === 'live' && !tab.ended) alive.zadd(this.d.keys.sessionTabs(tab.sessionId), 'XX', now, tab.tabId)
        }
        // Keeps this node's tabs counted; tabs of a node that died fade out after two intervals.
        if (alive.length > 0) await alive.exec().catch(() => {})
        await new Promise((resolve) => setImmediate(resolve))
      }
    } finally {
      this.pinging = false
    }
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.pingTimer)
      for (const tab of [...this.tabs]) tab.close(CLOSE.goingAway, 'server shutting down')
      await this.d.subscriber.quit().catch(() => this.d.subscriber.disconnect())
    })()
    return this.closing
  }
}

function typeOf(frame: string): string {
  const m = /^\{"type":"([^"]+)"/.exec(frame)
  return m ? m[1]! : ''
}

function synthesizedEnd(reason: string): { seq: number; frame: string } {
  const type = reason === 'logout' ? 'session.logged_out' : reason === 'idle_timeout' || reason === 'lifetime' ? 'session.expired' : 'session.terminated'
  const body: Record<string, unknown> = { type, at: new Date().toISOString() }
  if (type === 'session.logged_out') body.byTabId = null
  else body.reason = reason
  if (type === 'session.terminated') body.message = reason === 'admin' ? 'Session terminated by administrator' : 'Your session was ended'
  return { seq: 0, frame: JSON.stringify(body) }
}

function addTo<K>(map: Map<K, Set<Tab>>, key: K, tab: Tab): boolean {
  const set = map.get(key)
  if (set) {
    set.add(tab)
    return false
  }
  map.set(key, new Set([tab]))
  return true
}

function removeFrom<K>(map: Map<K, Set<Tab>>, key: K, tab: Tab): boolean {
  const set = map.get(key)
  if (!set?.delete(tab) || set.size > 0) return false
  map.delete(key)
  return true
}

function escapeRegExp(s: string) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
