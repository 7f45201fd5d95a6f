// The WebSocket hub of one node: which local tabs belong to which session and user, one
// Redis subscription per session that has a tab here, fan-out of each frame to those
// tabs, resume on hello, server pings, and the message handlers.
import type { FastifyBaseLogger } from 'fastify'
import type { Redis } from 'ioredis'
import type { Config } from '../config.js'
import type { RedisKeys } from '../infra/keys.js'
import { closeSubscriber } from '../infra/redis.js'
import type { Metrics } from '../infra/metrics.js'
import type { Presence } from '../presence/service.js'
import { type Sessions, terminalEvent } from '../sessions/service.js'
import type { SessionRecord } from '../sessions/records.js'
import { currentSeq, defineLogCommands, type LogPlace, type LogRead, logEnd, readEventLog } from '../infra/event-log.js'
import type { ClientMessage, Hello } from './messages.js'
import { CLOSE, TERMINAL_CLOSE, WS_ERRORS } from './protocol.js'
import type { Tab, TabHost, WireFrame } from './tab.js'

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

/** How often a slice of the tabs is pinged: every tab once per ping interval, on its own tick. */
const PING_TICK_MS = 100

/** At most this many ticks per interval (a long interval gets longer ticks, not more slots). */
const MAX_PING_SLOTS = 600

/** Presence refreshes per Redis pipeline: a slice at 50,000 tabs stays a few hundred commands. */
const PRESENCE_BATCH = 500

/** How long a catch-up waits for the command connection to come back after the subscriber did. */
const RECOVERY_WAIT_MS = 10_000

type Frame = { type: string; seq?: number; at?: string; sessionId?: string }

/** How a gap the log cannot cover is filled: the current state, or the terminal event of a session that has ended. */
type GapFill = { state: unknown } | { ended: { seq: number; frame: string } }

export class Hub implements TabHost {
  readonly log: FastifyBaseLogger
  readonly limits: TabHost['limits']
  private readonly bySession = new Map<string, Set<Tab>>()
  private readonly byUser = new Map<number, Set<Tab>>()
  private readonly tabs = new Set<Tab>()
  /** Per channel, the SUBSCRIBE every joining tab waits for (not only the first one). */
  private readonly subscriptions = new Map<string, Promise<void>>()
  /** Settles once the subscriber's re-SUBSCRIBE after its latest reconnect is acknowledged. */
  private resubscribed: Promise<void> = Promise.resolve()
  private readonly pingTimer: NodeJS.Timeout
  private readonly pingMs: number
  /** The tabs by the tick of the ping interval they are pinged on (round robin as they come). */
  private readonly pingSlots: Set<Tab>[]
  private readonly pingTickMs: number
  /** Monotonic: a wall clock set back must not stop the ticks. */
  private readonly pingEpoch = performance.now()
  private pingedTicks = 0
  private nextPingSlot = 0
  private subscriberWasReady = false
  private closing: Promise<void> | undefined
  private readonly sessionChannel: RegExp
  private readonly logPlace: LogPlace
  private readonly userChannel: RegExp

  constructor(private readonly d: HubDeps) {
    this.log = d.log
    this.limits = {
      maxBadMessages: d.config.ws.maxBadMessages,
      maxBufferedBytes: d.config.ws.maxBufferedBytes,
      heartbeatIntervalMs: d.config.heartbeatIntervalSeconds * 1000,
    }
    defineLogCommands(d.redis)
    this.logPlace = { redis: d.redis, keys: d.keys, ttlMs: d.config.eventLog.ttlSeconds * 1000 }
    this.sessionChannel = new RegExp(`^${escapeRegExp(d.keys.prefix)}\\{([^}]+)\\}:events$`)
    this.userChannel = new RegExp(`^${escapeRegExp(d.keys.prefix)}user:(\\d+):events$`)
    d.subscriber.on('message', (channel: string, frame: string) => this.onFrame(channel, frame))
    d.subscriber.on('ready', () => {
      // ioredis re-subscribes by itself after a reconnect; what was published in between is
      // lost to pub/sub, so every tab catches up from its session's log.
      if (this.subscriberWasReady) void this.catchUpAll()
      this.subscriberWasReady = true
    })
    this.pingMs = d.config.ws.pingIntervalSeconds * 1000
    this.pingSlots = Array.from({ length: Math.min(MAX_PING_SLOTS, Math.max(1, Math.round(this.pingMs / PING_TICK_MS))) }, () => new Set<Tab>())
    this.pingTickMs = this.pingMs / this.pingSlots.length
    this.pingTimer = setInterval(() => this.pingTick(), this.pingTickMs).unref()
  }

  /** The admin feature plugs its live feed in here (it is registered after realtime). */
  useAdmin(admin: NonNullable<HubDeps['admin']>): void {
    this.d.admin = admin
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
    tab.pingSlot = this.nextPingSlot++ % this.pingSlots.length
    this.pingSlots[tab.pingSlot]!.add(tab)
    this.d.metrics.sockets.set(this.tabs.size)
  }

  /** Resolves once this node hears the tab's session and user channels. */
  private async join(tab: Tab): Promise<void> {
    addTo(this.bySession, tab.sessionId, tab)
    addTo(this.byUser, tab.userId, tab)
    await Promise.all([this.subscribed(this.d.keys.sessionChannel(tab.sessionId)), this.subscribed(this.d.keys.userChannel(tab.userId))])
  }

  /** The channel's SUBSCRIBE, sent when the node's first tab needs it; a failed one is sent again by the next. */
  private subscribed(channel: string): Promise<void> {
    let ready = this.subscriptions.get(channel)
    if (!ready) {
      const sent = this.d.subscriber.subscribe(channel).then(() => undefined)
      ready = sent
      this.subscriptions.set(channel, sent)
      sent.catch(() => {
        if (this.subscriptions.get(channel) === sent) this.subscriptions.delete(channel)
      })
    }
    return ready
  }

  private unsubscribe(channel: string) {
    this.subscriptions.delete(channel)
    this.d.subscriber.unsubscribe(channel).catch(() => {})
  }

  leave(tab: Tab): void {
    if (!this.tabs.delete(tab)) return
    this.pingSlots[tab.pingSlot]?.delete(tab)
    this.d.metrics.sockets.set(this.tabs.size)
    this.d.admin?.unsubscribe(tab)
    if (removeFrom(this.bySession, tab.sessionId, tab)) this.unsubscribe(this.d.keys.sessionChannel(tab.sessionId))
    if (removeFrom(this.byUser, tab.userId, tab)) this.unsubscribe(this.d.keys.userChannel(tab.userId))
    if (tab.inPresence) this.d.presence.closeTab(tab.sessionId, tab).then(() => this.adminChanged(tab.sessionId), () => {})
  }

  /** Tabs or view of a session changed: every node's admin feed reloads it (after the write, on the same connection). */
  private adminChanged(sessionId: string) {
    this.d.redis.publish(this.d.keys.adminChanges, sessionId).catch(() => {})
  }

  // ── hello and resume ──────────────────────────────────────────────────────────

  async hello(tab: Tab, hello: Hello): Promise<void> {
    if (tab.ended) return this.explainEnd(tab, hello, tab.auth.session)
    const handshake = this.d.metrics.handshake.startTimer()
    await this.join(tab)
    // From here on every event of the session reaches this tab, queued until it is live.
    const log = hello.lastSeq === undefined ? null : await this.readLog(tab.sessionId, hello.lastSeq)
    const current = log?.current ?? (await currentSeq(this.logPlace, tab.sessionId))
    // The session may have ended since the upgrade. Read after the seq: an end committed
    // later is published later, above `current`, and reaches the tab like any event.
    const session = await this.d.sessions.byId(tab.sessionId)
    if (session?.status !== 'active') return this.explainEnd(tab, hello, session ?? tab.auth.session)
    if (!(await this.enterPresence(tab, session, hello.view))) return
    this.adminChanged(session.id)
    await this.d.sessions.recordView(session, hello.view, hello.tabId)
    const state = await this.d.sessions.stateOf({ ...tab.auth, session })
    if (!tab.isOpen()) return
    const resumed = log?.complete ?? false
    tab.sendRaw(
      JSON.stringify({
        type: 'welcome',
        sessionId: session.id,
        tabId: hello.tabId,
        seq: current,
        state: { ...state, seq: current },
        heartbeatIntervalMs: this.limits.heartbeatIntervalMs,
        idleAfterMs: tab.auth.settings.idleAfterSeconds * 1000,
        // How often the client SDK reads session_state while its socket is down.
        syncCheckIntervalMs: this.d.config.syncCheckIntervalSeconds * 1000,
        resumed,
        replayed: resumed ? log!.frames.length : 0,
      }),
    )
    handshake({ resumed: String(resumed) })
    if (resumed) this.d.metrics.resumes.inc()
    tab.lastSent = resumed ? hello.lastSeq! : current
    if (log) this.sendFromLog(tab, log, state)
    this.finishSync(tab)
  }

  /** Adds the tab to presence unless it closed meanwhile; false when it did. */
  private async enterPresence(tab: Tab, session: SessionRecord, view: string): Promise<boolean> {
    if (!tab.isOpen()) return false
    await this.d.presence.openTab(session.id, tab, view, session.expiresAt)
    tab.inPresence = true
    if (tab.state !== 'closed') return true
    // It closed while presence was written: leave() found nothing to remove then.
    await this.d.presence.closeTab(session.id, tab)
    return false
  }

  /** Resolves when the command connection is up; after an outage it reconnects on its own schedule, not with the subscriber. */
  private async commandsReady(): Promise<void> {
    const { redis } = this.d
    if (redis.status === 'ready') return
    await new Promise<void>((resolve, reject) => {
      const ready = () => {
        clearTimeout(timer)
        resolve()
      }
      const timer = setTimeout(() => {
        redis.off('ready', ready)
        reject(new Error('the Redis command connection is not back'))
      }, RECOVERY_WAIT_MS)
      redis.once('ready', ready)
    })
  }

  private readLog(sessionId: string, afterSeq: number): Promise<LogRead> {
    return readEventLog(this.logPlace, sessionId, afterSeq, this.d.config.eventLog.max)
  }

  /** Sends what the log holds past the tab's last seq, or one resync snapshot when it cannot cover the gap. */
  private sendFromLog(tab: Tab, log: LogRead, state: unknown, frames: { seq: number; frame: WireFrame; type: string }[] = withTypes(log)) {
    if (log.complete) {
      for (const f of frames) if (f.seq > tab.lastSent && tab.isOpen()) tab.sendLogged(f.seq, f.frame, f.type)
      return
    }
    this.d.metrics.resyncs.inc()
    tab.sendRaw(JSON.stringify({ type: 'session.state', state, resync: true, seq: log.current, at: new Date().toISOString() }))
    tab.lastSent = log.current
  }

  /**
   * What fills a gap the log cannot cover: one resync snapshot, or, when the session has
   * ended, its terminal event. PostgreSQL decides: Redis may have lost the terminal event
   * (or the tab its seq) with the rest of the log.
   */
  private async gapFill(auth: Tab['auth']): Promise<GapFill> {
    const session = await this.d.sessions.byId(auth.session.id)
    if (session?.status !== 'active') return { ended: await this.terminalOf(session ?? auth.session) }
    return { state: await this.d.sessions.stateOf({ ...auth, session }) }
  }

  /** Sends the tab what the log holds past its last seq, or fills the gap (`fill`, read when the log was incomplete). */
  private sendCatchUp(tab: Tab, log: LogRead, fill: GapFill | null, frames?: { seq: number; frame: WireFrame; type: string }[]) {
    if (fill && 'ended' in fill) {
      const { seq, frame } = fill.ended
      tab.sendLogged(seq, frame, typeOf(frame))
      if (tab.isOpen()) tab.close(CLOSE.terminated, 'session ended')
      return
    }
    this.sendFromLog(tab, log, fill?.state ?? null, frames)
  }

  /** The end of a sync: live, or another sync when the subscriber reconnected meanwhile. */
  private finishSync(tab: Tab) {
    if (!tab.isOpen()) return
    if (tab.refillWanted) return void this.refill(tab)
    tab.goLive()
  }

  /** A tab that may have missed events (a seq gap, a reconnect during its sync) reads them from the log. */
  async refill(tab: Tab): Promise<void> {
    tab.refillWanted = false
    try {
      await this.resubscribed
      await this.commandsReady()
      const log = await this.readLog(tab.sessionId, tab.lastSent)
      if (!tab.isOpen()) return
      const fill = log.complete ? null : await this.gapFill(tab.auth)
      if (!tab.isOpen()) return
      this.sendCatchUp(tab, log, fill)
      this.finishSync(tab)
    } catch (err) {
      this.log.warn({ err, sessionId: tab.sessionId }, 'realtime: refill from the log failed')
      tab.close(CLOSE.slowConsumer, 'resume needed')
    }
  }

  /** A tab of a session that has ended learns why (replayed from the log), then is closed. */
  private async explainEnd(tab: Tab, hello: Hello, session: SessionRecord): Promise<void> {
    const log = hello.lastSeq === undefined ? null : await this.readLog(session.id, hello.lastSeq)
    const frames = log?.complete ? log.frames : []
    if (!frames.some((f) => TERMINAL_CLOSE[typeOf(f.frame)])) frames.splice(0, frames.length, await this.terminalOf(session))
    for (const f of frames) if (tab.isOpen()) tab.sendLogged(f.seq, f.frame, typeOf(f.frame))
    if (tab.isOpen()) tab.close(CLOSE.terminated, 'session ended')
  }

  /**
   * The terminal event of an ended session: the last one in its log, or, when the log lost
   * it, one made up from the recorded end reason, with the seq it had (the counter is past
   * the log) or would have had (the next one), so every tab is told the same seq.
   */
  private async terminalOf(session: SessionRecord): Promise<{ seq: number; frame: string }> {
    const { counter, last } = await logEnd(this.logPlace, session.id)
    if (last && TERMINAL_CLOSE[typeOf(last.frame)]) return last
    const logged = last?.seq ?? 0
    const seq = counter > logged ? counter : logged + 1
    const at = new Date(session.endedAt ?? Date.now()).toISOString()
    return { seq, frame: JSON.stringify({ ...terminalEvent({ reason: session.endReason ?? 'logout' }), at, seq }) }
  }

  private async catchUpAll(): Promise<void> {
    // Before the first await: every live tab holds back live frames from here on (one sent
    // now would move it past the events it missed), and a tab still syncing (in its hello,
    // or a refill) syncs again from the log once it is done.
    const catchUps: { sessionId: string; tabs: Tab[] }[] = []
    for (const [sessionId, tabs] of this.bySession) {
      const live: Tab[] = []
      for (const tab of tabs) {
        if (tab.state === 'live') {
          tab.resync()
          live.push(tab)
        } else tab.refillWanted = true
      }
      if (live.length > 0) catchUps.push({ sessionId, tabs: live })
    }
    // 'ready' comes when ioredis has sent the SUBSCRIBEs again, not when Redis has taken
    // them: a PING on the same connection is answered after them. Only then is the log
    // read, so an event published in between is either in the log or heard live.
    const acknowledged = this.d.subscriber.ping()
    this.resubscribed = acknowledged.then(
      () => undefined,
      () => undefined,
    )
    try {
      await acknowledged
      await this.commandsReady()
    } catch (err) {
      this.log.warn({ err }, 'realtime: the subscriber did not come back')
      for (const { tabs } of catchUps) for (const t of tabs) t.close(CLOSE.slowConsumer, 'resume needed')
      return
    }
    for (const { sessionId, tabs } of catchUps) {
      try {
        const log = await this.readLog(sessionId, Math.min(...tabs.map((t) => t.lastSent)))
        const fill = log.complete ? null : await this.gapFill(tabs[0]!.auth)
        // One Buffer per frame for all the session's tabs, as in live fan-out.
        const frames = log.frames.map((f) => ({ seq: f.seq, frame: Buffer.from(f.frame), type: typeOf(f.frame) }))
        for (const t of tabs) {
          if (!t.isOpen()) continue
          this.sendCatchUp(t, log, fill, frames)
          this.finishSync(t)
        }
      } catch (err) {
        this.log.warn({ err, sessionId }, 'realtime: catch-up after reconnect failed')
        for (const t of tabs) t.close(CLOSE.slowConsumer, 'resume needed')
      }
    }
  }

  // ── messages ──────────────────────────────────────────────────────────────────

  async handle(tab: Tab, m: ClientMessage): Promise<void> {
    const { session } = tab.auth
    switch (m.type) {
      case 'heartbeat':
      {
        const viewChanged = m.view !== undefined && m.view !== tab.view
        if (viewChanged) {
          tab.view = m.view!
          await this.d.sessions.recordView(session, m.view!, tab.tabId)
        }
        if (tab.isOpen()) await this.d.presence.seeTabs([{ sessionId: session.id, socket: tab, keepUntil: session.expiresAt, view: m.view }])
        if (viewChanged) this.adminChanged(session.id)
        if (m.lastInputAt !== undefined && m.lastInputAt > tab.lastInputAt) await this.input(tab, m.lastInputAt)
        return
      }
      case 'activity':
        return this.input(tab, m.at)
      case 'view':
        if (m.view !== tab.view) await this.d.sessions.recordView(session, m.view, tab.tabId)
        tab.view = m.view
        await this.d.presence.setView(session.id, m.view, session.expiresAt)
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
    if (channel === this.d.keys.adminAlerts) {
      this.d.admin?.alert?.(frame)
      return
    }
    // Serialised once: every local socket is handed the same bytes (ws would encode a string on every send).
    const data = Buffer.from(frame)
    const publishedAt = parsed.at ? Date.parse(parsed.at) : undefined
    const sessionId = this.sessionChannel.exec(channel)?.[1]
    if (sessionId !== undefined) {
      const tabs = this.bySession.get(sessionId)
      if (!tabs) return
      const seq = parsed.seq ?? 0
      for (const tab of tabs) tab.deliverLogged(seq, data, parsed.type, publishedAt)
      return
    }
    if (channel === this.d.keys.broadcastChannel) {
      for (const tab of this.tabs) tab.deliver(data, parsed.type, publishedAt)
      return
    }
    const userId = Number(this.userChannel.exec(channel)?.[1])
    for (const tab of this.byUser.get(userId) ?? []) {
      // A notice about a session goes to the user's *other* sessions.
      if (tab.sessionId !== parsed.sessionId) tab.deliver(data, parsed.type, publishedAt)
    }
  }

  sent(type: string, publishedAt: number | undefined) {
    this.d.metrics.eventsDelivered.inc({ type })
    if (publishedAt !== undefined && !Number.isNaN(publishedAt)) this.d.metrics.fanoutLatency.observe(Math.max(0, Date.now() - publishedAt) / 1000)
  }

  closedByServer(code: number) {
    this.d.metrics.wsCloses.inc({ code: String(code) })
  }

  slowConsumer() {
    this.d.metrics.slowConsumerCloses.inc()
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

  /**
   * One tick of the ping interval: the tabs of the slots now due are checked and pinged, and
   * their presence refreshed. Spread over the interval (10,000 pings at once stalled fan-out
   * for half a second); a late timer catches up, so every tab is still seen once an interval.
   */
  private pingTick() {
    const now = Date.now()
    const due = Math.floor((performance.now() - this.pingEpoch) / this.pingTickMs)
    const slots = this.pingSlots.length
    let alive: Parameters<Presence['seeTabs']>[0] = []
    for (let tick = Math.max(this.pingedTicks, due - slots + 1); tick <= due; tick++) {
      // A tab closed here leaves its slot at once; a Set lets go of it mid-iteration safely.
      for (const tab of this.pingSlots[tick % slots]!) {
        if (now - tab.lastSeen > 2 * this.pingMs || (tab.state === 'awaiting-hello' && now - tab.connectedAt > 2 * this.pingMs)) {
          tab.close(CLOSE.heartbeatTimeout, tab.state === 'awaiting-hello' ? 'no hello' : 'no answer to ping')
          continue
        }
        if (!tab.isOpen()) continue
        tab.socket.ping()
        if (!tab.inPresence) continue
        alive.push({ sessionId: tab.sessionId, socket: tab, keepUntil: tab.auth.session.expiresAt })
        if (alive.length < PRESENCE_BATCH) continue
        this.seePresence(alive)
        alive = []
      }
    }
    this.pingedTicks = due + 1
    this.seePresence(alive)
  }

  /** Keeps this node's tabs counted; tabs of a node that died fade out after 1.5 intervals. */
  private seePresence(alive: Parameters<Presence['seeTabs']>[0]) {
    this.d.presence.seeTabs(alive).catch((err) => this.log.debug({ err }, 'realtime: presence refresh failed'))
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.pingTimer)
      for (const tab of [...this.tabs]) tab.close(CLOSE.goingAway, 'server shutting down')
      await closeSubscriber(this.d.subscriber)
    })()
    return this.closing
  }
}

function typeOf(frame: string): string {
  const m = /^\{"type":"([^"]+)"/.exec(frame)
  return m ? m[1]! : ''
}

function withTypes(log: LogRead) {
  return log.frames.map((f) => ({ seq: f.seq, frame: f.frame, type: typeOf(f.frame) }))
}

function addTo<K>(map: Map<K, Set<Tab>>, key: K, tab: Tab) {
  const set = map.get(key)
  if (set) set.add(tab)
  else map.set(key, new Set([tab]))
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
