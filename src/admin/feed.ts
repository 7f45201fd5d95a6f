// The admin live feed (docs/realtime.md, "Admin live feed"): a snapshot on admin.subscribe, then
// at most one delta per ADMIN_FEED_INTERVAL_MS per admin socket, only for visible changes.
//
// It is event-driven. Any node publishes the ids of sessions with a possibly visible change
// on the admin-changes channel: every logged session event does so inside its publish
// script (endings, idle/active, platform switches, session.state), and logins, tab and view
// changes and role changes do so explicitly. A node listens to that channel only while it
// has admin subscribers, collects the ids and, once per interval, loads just those sessions
// and sends each subscriber what changed under its filter. A slow reconcile (a full list
// compare) catches what nobody announced, such as the tabs of a node that died.
import type { Redis } from 'ioredis'
import { enabledAdminsAmong } from '../auth/users.js'
import type { Db } from '../infra/db.js'
import type { InfraKeys } from '../infra/keys.js'
import { loggable } from '../infra/errors.js'
import { closeSubscriber, duplicateSubscriber } from '../infra/redis.js'
import type { AdminFilter } from '../realtime/messages.js'
import { WS_ERRORS, SERVER_MESSAGES } from '../realtime/protocol.js'
import type { Tab } from '../realtime/tab.js'
import type { SessionDetails } from '../sessions/detail.js'
import type { Sessions } from '../sessions/service.js'
import type { SessionView } from '../sessions/views.js'
import type { SettingsService } from '../settings/service.js'
import { listSessions, matchesFilter } from './session-list.js'

const SNAPSHOT_LIMIT = 500
// With presence forgetting a silent tab after 1.5 ping intervals (15 s), a tab of a dead node
// leaves the feed within 19 s (P12: 20 s).
const RECONCILE_MS = 4000
const SESSION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

interface Subscriber {
  filter: AdminFilter
  /** id → the visible part of the row last sent (lastActivity alone is not a visible change) */
  sent: Map<string, string>
  /** The newest loginAt under the filter at snapshot time: a row that logged in later is new here. */
  newestLogin: string
}

export interface FeedDeps {
  /** For the accounts table: who is an admin now. */
  db: Db
  sessionDetails: Pick<SessionDetails, 'activeIds' | 'statuses'>
  /** Duplicated for the feed's own SUBSCRIBE connection. */
  redis: Redis
  keys: InfraKeys
  sessions: Sessions
  settings: SettingsService
  intervalMs: number
  /** How often the full list is compared (default 5 s). */
  reconcileMs?: number
  log: { warn(obj: object, msg: string): void }
}

type Removal = { id: string; reason: string }

/** What the ids of one tick are now: the live ones as views, the ended ones by end reason. */
interface Loaded {
  views: Map<string, SessionView>
  endReasons: Map<string, string>
}

const visible = (v: SessionView) =>
  JSON.stringify([v.status, v.currentView, v.tabs, v.platform?.id ?? null, v.platform?.name ?? null, v.role, v.username, v.ip])

export class AdminFeed {
  private readonly subscribers = new Map<Tab, Subscriber>()
  private readonly dirty = new Set<string>()
  private readonly reconcileMs: number
  private listener: Redis | undefined
  private listening: Promise<void> | undefined
  private timer: NodeJS.Timeout | undefined
  /** Snapshots and ticks run one at a time, so a tick never sees a half-registered subscriber. */
  private work: Promise<void> = Promise.resolve()
  private tickQueued = false
  private lastReconcile = Date.now()
  private closing: Promise<void> | undefined

  constructor(private readonly d: FeedDeps) {
    this.reconcileMs = d.reconcileMs ?? RECONCILE_MS
  }

  async subscribe(tab: Tab, filter: unknown): Promise<void> {
    const f = (filter ?? {}) as AdminFilter
    await this.serially(async () => {
      try {
        await this.snapshot(tab, f)
      } finally {
        // The tab closed (its unsubscribe found nothing yet) or the snapshot failed: a
        // listener nobody needs would hear every change of the cluster for good.
        if (this.subscribers.size === 0) await this.stopListening()
      }
    })
  }

  private async snapshot(tab: Tab, f: AdminFilter) {
    if (!tab.isOpen() || this.closing) return
    // Listening first: every change announced after the snapshot is read reaches a tick.
    await this.listen()
    const all = await this.list(f)
    if (!tab.isOpen() || this.closing) return
    const views = all.slice(0, f.limit ?? SNAPSHOT_LIMIT)
    let newestLogin = '' // ISO times compare as strings
    for (const v of all) if (v.loginAt > newestLogin) newestLogin = v.loginAt
    const snapshot = JSON.stringify({ type: SERVER_MESSAGES.adminSnapshot, sessions: views, total: all.length, at: new Date().toISOString() })
    if (!tab.deliver(snapshot, 'admin.snapshot')) return
    this.subscribers.set(tab, { filter: f, sent: new Map(views.map((v) => [v.id, visible(v)])), newestLogin })
    this.timer ??= setInterval(() => this.tick(), this.d.intervalMs).unref()
  }

  unsubscribe(tab: Tab): void {
    if (!this.subscribers.delete(tab) || this.subscribers.size > 0) return
    // Nobody here watches any more (in turn, so a subscribe that is being set up meanwhile
    // listens again after this).
    void this.serially(() => this.stopListening()).catch(() => {})
  }

  /** Stops hearing every change of the cluster, unless a subscriber came meanwhile; what was collected goes too. */
  private async stopListening() {
    if (this.subscribers.size > 0) return
    clearInterval(this.timer)
    this.timer = undefined
    this.dirty.clear()
    if (!this.listening) return
    this.listening = undefined
    await this.listener?.unsubscribe(this.d.keys.adminChanges)
  }

  /** A new alert (any node raised it) goes at once to every subscribed admin tab here. */
  alert(frame: string): void {
    for (const tab of this.subscribers.keys()) tab.deliver(frame, 'admin.alert')
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.timer)
      this.timer = undefined
      this.subscribers.clear()
      if (this.listener) await closeSubscriber(this.listener)
    })()
    return this.closing
  }

  // ── listening ─────────────────────────────────────────────────────────────────

  private listen(): Promise<void> {
    this.listening ??= this.connectListener()
      .then((listener) => listener.subscribe(this.d.keys.adminChanges))
      .then(
        () => {},
        (err) => {
          this.listening = undefined
          throw err
        },
      )
    return this.listening
  }

  private async connectListener(): Promise<Redis> {
    if (this.listener) return this.listener
    if (this.closing) throw new Error('the admin feed is closed')
    const listener = duplicateSubscriber(this.d.redis, 'tessera-admin-feed')
    this.listener = listener
    let wasReady = false
    listener.on('error', () => {})
    listener.on('message', (_channel: string, ids: string) => {
      // Only while listening is wanted: ids that no tick will take must not pile up.
      if (!this.listening) return
      for (const id of ids.split(',')) if (SESSION_ID.test(id)) this.dirty.add(id)
    })
    listener.on('ready', () => {
      // ioredis re-subscribes by itself; what was announced meanwhile is lost: compare everything soon.
      if (wasReady) this.lastReconcile = 0
      wasReady = true
    })
    await listener.connect()
    return listener
  }

  // ── ticks ─────────────────────────────────────────────────────────────────────

  private serially(fn: () => Promise<void>): Promise<void> {
    const run = this.work.then(fn)
    this.work = run.catch(() => {})
    return run
  }

  private tick() {
    if (this.tickQueued || this.subscribers.size === 0) return // a slow tick never stacks others up
    this.tickQueued = true
    void this.serially(async () => {
      this.tickQueued = false
      const ids = [...this.dirty]
      this.dirty.clear()
      try {
        if (Date.now() - this.lastReconcile >= this.reconcileMs) await this.reconcile(new Set(ids))
        else if (ids.length > 0) await this.sendChanges(ids)
      } catch (err) {
        // PostgreSQL or Redis briefly away: the ids wait for the next tick.
        for (const id of ids) this.dirty.add(id)
        this.d.log.warn({ err: loggable(err) }, 'admin feed: tick failed')
      }
    })
  }

  /** The usual tick: only the announced sessions are loaded. */
  private async sendChanges(ids: string[]) {
    const loaded = await this.load(ids)
    this.dropDemoted([...loaded.views.values()].filter((v) => v.role !== 'admin').map((v) => v.userId))
    for (const [tab, sub] of this.subscribers) {
      const upserted: SessionView[] = []
      const removed: Removal[] = []
      for (const id of ids) {
        const view = loaded.views.get(id)
        if (view && matchesFilter(view, sub.filter)) {
          if (sub.sent.get(id) !== visible(view)) upserted.push(view)
        } else if (sub.sent.has(id)) {
          removed.push({ id, reason: view ? 'filtered' : (loaded.endReasons.get(id) ?? 'ended') })
        }
      }
      this.send(tab, sub, upserted, removed)
    }
  }

  /** The slow tick: the whole list of each filter against what each subscriber was sent. */
  private async reconcile(dirty: Set<string>) {
    this.lastReconcile = Date.now()
    await this.dropDemotedByDatabase()
    const byFilter = new Map<string, [Tab, Subscriber][]>()
    for (const entry of this.subscribers) {
      const key = JSON.stringify(entry[1].filter)
      byFilter.set(key, [...(byFilter.get(key) ?? []), entry])
    }
    for (const group of byFilter.values()) {
      const all = await this.list(group[0]![1].filter)
      const live = new Set(all.map((v) => v.id))
      const gone = [...new Set(group.flatMap(([, sub]) => [...sub.sent.keys()].filter((id) => !live.has(id))))]
      const reasons = await this.endReasons(gone)
      for (const [tab, sub] of group) {
        const upserted = all.filter((v) => {
          const sent = sub.sent.get(v.id)
          return sent === undefined ? dirty.has(v.id) || v.loginAt > sub.newestLogin : sent !== visible(v)
        })
        const removed = [...sub.sent.keys()].filter((id) => !live.has(id)).map((id) => ({ id, reason: reasons.get(id) ?? 'filtered' }))
        this.send(tab, sub, upserted, removed)
      }
    }
  }

  private send(tab: Tab, sub: Subscriber, upserted: SessionView[], removed: Removal[]) {
    if (upserted.length === 0 && removed.length === 0) return
    // Recorded only once the tab has it (or will have it, after its sync): else the
    // next tick would take the change as already shown and never send it.
    if (!tab.deliver(JSON.stringify({ type: SERVER_MESSAGES.adminDelta, upserted, removed, at: new Date().toISOString() }), SERVER_MESSAGES.adminDelta)) return
    for (const v of upserted) sub.sent.set(v.id, visible(v))
    for (const r of removed) sub.sent.delete(r.id)
  }

  // ── who may watch ─────────────────────────────────────────────────────────────

  /** A role change applies at once: an admin who is no longer one stops receiving the feed. */
  private dropDemoted(userIds: number[]) {
    if (userIds.length === 0) return
    const demoted = new Set(userIds)
    for (const tab of [...this.subscribers.keys()]) {
      if (!demoted.has(tab.userId)) continue
      this.unsubscribe(tab)
      tab.error(WS_ERRORS.forbidden, 'The admin feed is for administrators.')
    }
  }

  /** The backstop of dropDemoted, for changes nobody announced. */
  private async dropDemotedByDatabase() {
    const userIds = [...new Set([...this.subscribers.keys()].map((t) => t.userId))]
    if (userIds.length === 0) return
    const admins = await enabledAdminsAmong(this.d.db, userIds)
    this.dropDemoted(userIds.filter((id) => !admins.has(id)))
  }

  // ── loading ───────────────────────────────────────────────────────────────────

  private async load(ids: string[]): Promise<Loaded> {
    const rows = await this.d.sessionDetails.statuses(ids)
    const live = rows.filter((r) => r.status === 'active').map((r) => r.id)
    const views = await this.d.sessions.viewsOf(live, await this.d.settings.get())
    return {
      views: new Map(views.map((v) => [v.id, v])),
      endReasons: new Map(rows.filter((r) => r.status !== 'active').map((r) => [r.id, r.endReason ?? 'ended'])),
    }
  }

  private async endReasons(ids: string[]): Promise<Map<string, string>> {
    if (ids.length === 0) return new Map()
    const rows = await this.d.sessionDetails.statuses(ids)
    return new Map(rows.filter((r) => r.status === 'ended').map((r) => [r.id, r.endReason ?? 'ended']))
  }

  /** Every active session under the filter, in the filter's order (most recently active first by default). */
  private async list(f: AdminFilter): Promise<SessionView[]> {
    return listSessions(this.d.sessionDetails, this.d.sessions, await this.d.settings.get(), f)
  }
}
