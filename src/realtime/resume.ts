// How a tab gets in step: `hello` (welcome, with a replay from the session's log when it
// says what it saw last), the refill of a gap, the catch-up of every tab after the
// subscriber reconnected, and the explanation a tab of an ended session gets.
import type { FastifyBaseLogger } from 'fastify'
import type { Redis } from 'ioredis'
import type { Config } from '../config.js'
import { type LogPlace, type LogRead, logEnd, readEventLog } from '../infra/event-log.js'
import type { Metrics } from '../infra/metrics.js'
import type { OpenedTab, Presence } from '../presence/service.js'
import type { SessionRecord } from '../sessions/records.js'
import { type Sessions, terminalEvent } from '../sessions/service.js'
import type { Membership } from './membership.js'
import type { Hello } from './messages.js'
import { CLOSE, SERVER_MESSAGES, TERMINAL_CLOSE } from './protocol.js'
import type { Tab, WireFrame } from './tab.js'

export interface ResumeDeps {
  redis: Pick<Redis, 'status' | 'once' | 'off'>
  subscriber: Pick<Redis, 'ping'>
  logPlace: LogPlace
  membership: Pick<Membership, 'join' | 'bySession'>
  sessions: Pick<Sessions, 'byId' | 'stateOf' | 'stateAt' | 'recordView'>
  presence: Pick<Presence, 'openTab' | 'closeTab'>
  metrics: Pick<Metrics, 'handshake' | 'resumes' | 'resyncs'>
  config: Pick<Config, 'syncCheckIntervalSeconds' | 'eventLog'>
  heartbeatIntervalMs: number
  log: Pick<FastifyBaseLogger, 'warn'>
}

/** How long a catch-up waits for the command connection to come back after the subscriber did. */
const RECOVERY_WAIT_MS = 10_000

/** How a gap the log cannot cover is filled: the current state, or the terminal event of a session that has ended. */
type GapFill = { state: unknown } | { ended: { seq: number; frame: string } }

type Frames = { seq: number; frame: WireFrame; type: string }[]

export class Resume {
  /** Settles once the subscriber's re-SUBSCRIBE after its latest reconnect is acknowledged. */
  private resubscribed: Promise<void> = Promise.resolve()

  constructor(private readonly d: ResumeDeps) {}

  async hello(tab: Tab, hello: Hello): Promise<void> {
    if (tab.ended) return this.explainEnd(tab, hello, tab.auth.session)
    const handshake = this.d.metrics.handshake.startTimer()
    await this.d.membership.join(tab)
    // From here on every event of the session reaches this tab, queued until it is live.
    const log = hello.lastSeq === undefined ? null : await this.readLog(tab.sessionId, hello.lastSeq)
    const session = tab.auth.session
    const opened = await this.enterPresence(tab, session, hello.view)
    if (!opened) return
    // Ended since the upgrade: its terminal event is at or below the seq the step read. An
    // end after the step is published above it and reaches the tab like any event.
    if (opened.ended) return this.explainEnd(tab, hello, (await this.d.sessions.byId(session.id)) ?? session)
    const current = log?.current ?? opened.seq
    const [, state] = await Promise.all([
      this.d.sessions.recordView(session, hello.view, hello.tabId),
      this.d.sessions.stateAt(tab.auth, current, opened),
    ])
    if (!tab.isOpen()) return
    const resumed = log?.complete ?? false
    tab.sendRaw(
      JSON.stringify({
        type: SERVER_MESSAGES.welcome,
        sessionId: session.id,
        tabId: hello.tabId,
        seq: current,
        state: { ...state, seq: current },
        heartbeatIntervalMs: this.d.heartbeatIntervalMs,
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

  /**
   * The hello's step in Redis (Presence.openTab): the seq, and the tab in presence unless
   * the session has ended. Null when the tab closed before or during it.
   */
  private async enterPresence(tab: Tab, session: SessionRecord, view: string): Promise<OpenedTab | null> {
    if (!tab.isOpen()) return null
    const opened = await this.d.presence.openTab(session.id, tab, view, session.expiresAt)
    if (opened.ended) return opened
    tab.inPresence = true
    if (tab.state !== 'closed') return opened
    // It closed while presence was written: leave() found nothing to remove then.
    await this.d.presence.closeTab(session.id, tab)
    return null
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
    return readEventLog(this.d.logPlace, sessionId, afterSeq, this.d.config.eventLog.max)
  }

  /** Sends what the log holds past the tab's last seq, or one resync snapshot when it cannot cover the gap. */
  private sendFromLog(tab: Tab, log: LogRead, state: unknown, frames: Frames = withTypes(log)) {
    if (log.complete) {
      for (const f of frames) if (f.seq > tab.lastSent && tab.isOpen()) tab.sendLogged(f.seq, f.frame, f.type)
      return
    }
    this.d.metrics.resyncs.inc()
    tab.sendRaw(JSON.stringify({ type: SERVER_MESSAGES.sessionState, state, resync: true, seq: log.current, at: new Date().toISOString() }))
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
  private sendCatchUp(tab: Tab, log: LogRead, fill: GapFill | null, frames?: Frames) {
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
      this.d.log.warn({ err, sessionId: tab.sessionId }, 'realtime: refill from the log failed')
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
    const { counter, last } = await logEnd(this.d.logPlace, session.id)
    if (last && TERMINAL_CLOSE[typeOf(last.frame)]) return last
    const logged = last?.seq ?? 0
    const seq = counter > logged ? counter : logged + 1
    const at = new Date(session.endedAt ?? Date.now()).toISOString()
    return { seq, frame: JSON.stringify({ ...terminalEvent({ reason: session.endReason ?? 'logout', note: session.endNote }), at, seq }) }
  }

  /** After the subscriber reconnected: every tab of this node catches up from its session's log. */
  async catchUpAll(): Promise<void> {
    // Before the first await: every live tab holds back live frames from here on (one sent
    // now would move it past the events it missed), and a tab still syncing (in its hello,
    // or a refill) syncs again from the log once it is done.
    const catchUps: { sessionId: string; tabs: Tab[] }[] = []
    for (const [sessionId, tabs] of this.d.membership.bySession) {
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
      this.d.log.warn({ err }, 'realtime: the subscriber did not come back')
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
        this.d.log.warn({ err, sessionId }, 'realtime: catch-up after reconnect failed')
        for (const t of tabs) t.close(CLOSE.slowConsumer, 'resume needed')
      }
    }
  }
}

function typeOf(frame: string): string {
  const m = /^\{"type":"([^"]+)"/.exec(frame)
  return m ? m[1]! : ''
}

function withTypes(log: LogRead) {
  return log.frames.map((f) => ({ seq: f.seq, frame: f.frame, type: typeOf(f.frame) }))
}
