// The admin live feed (realtime.md, "Admin live feed"): a snapshot on admin.subscribe, then
// at most one coalesced delta per ADMIN_FEED_INTERVAL_MS, only when something visible
// changed. Each node computes the list its own admin sockets see, so every node's admins
// are served without any cross-node coordination.
import type { Pool } from '../infra/db.js'
import type { AdminFilter } from '../realtime/messages.js'
import type { Tab } from '../realtime/tab.js'
import type { SessionView, Sessions } from '../sessions/service.js'
import type { SettingsService } from '../settings/service.js'
import { listSessions } from './session-list.js'

const SNAPSHOT_LIMIT = 500

interface Subscriber {
  filter: AdminFilter
  /** id → the visible part of the row last sent (lastActivity alone is not a visible change) */
  sent: Map<string, string>
}

export interface FeedDeps {
  sql: Pool
  sessions: Sessions
  settings: SettingsService
  intervalMs: number
}

const visible = (v: SessionView) =>
  JSON.stringify([v.status, v.currentView, v.tabs, v.platform?.id ?? null, v.platform?.name ?? null, v.role, v.username, v.ip])

export class AdminFeed {
  private readonly subscribers = new Map<Tab, Subscriber>()
  private timer: NodeJS.Timeout | undefined
  private ticking = false

  constructor(private readonly d: FeedDeps) {}

  async subscribe(tab: Tab, filter: unknown): Promise<void> {
    const f = (filter ?? {}) as AdminFilter
    const { views, total } = await this.list(f)
    const sub: Subscriber = { filter: f, sent: new Map(views.map((v) => [v.id, visible(v)])) }
    this.subscribers.set(tab, sub)
    tab.deliver(JSON.stringify({ type: 'admin.snapshot', sessions: views, total, at: new Date().toISOString() }), 'admin.snapshot')
    this.timer ??= setInterval(() => void this.tick(), this.d.intervalMs).unref()
  }

  unsubscribe(tab: Tab): void {
    this.subscribers.delete(tab)
    if (this.subscribers.size === 0 && this.timer) {
      clearInterval(this.timer)
      this.timer = undefined
    }
  }

  /** A new alert (any node raised it) goes at once to every subscribed admin tab here. */
  alert(frame: string): void {
    for (const tab of this.subscribers.keys()) tab.deliver(frame, 'admin.alert')
  }

  close(): void {
    this.subscribers.clear()
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
  }

  private async tick(): Promise<void> {
    if (this.ticking) return // a slow query never stacks ticks up
    this.ticking = true
    try {
      await this.dropDemoted()
      const byFilter = new Map<string, Tab[]>()
      for (const [tab, sub] of this.subscribers) {
        const key = JSON.stringify(sub.filter)
        byFilter.set(key, [...(byFilter.get(key) ?? []), tab])
      }
      for (const tabs of byFilter.values()) {
        const { views } = await this.list(this.subscribers.get(tabs[0]!)!.filter)
        for (const tab of tabs) await this.sendDelta(tab, views)
      }
    } catch {
      // PostgreSQL or Redis briefly away: the next tick tries again.
    } finally {
      this.ticking = false
    }
  }

  /** A role change applies at once: an admin who is no longer one stops receiving the feed. */
  private async dropDemoted() {
    const userIds = [...new Set([...this.subscribers.keys()].map((t) => t.userId))]
    if (userIds.length === 0) return
    const rows = await this.d.sql`select id from users where id = any(${this.d.sql.array(userIds)}::int[]) and role = 'admin' and not disabled`
    const admins = new Set(rows.map((r) => r.id as number))
    for (const tab of this.subscribers.keys()) {
      if (admins.has(tab.userId)) continue
      this.unsubscribe(tab)
      tab.error('FORBIDDEN', 'The admin feed is for administrators.')
    }
  }

  private async sendDelta(tab: Tab, views: SessionView[]) {
    const sub = this.subscribers.get(tab)
    if (!sub) return
    const now = new Map(views.map((v) => [v.id, v]))
    const upserted = views.filter((v) => sub.sent.get(v.id) !== visible(v))
    const goneIds = [...sub.sent.keys()].filter((id) => !now.has(id))
    if (upserted.length === 0 && goneIds.length === 0) return
    const reasons = await this.endReasons(goneIds)
    const removed = goneIds.map((id) => ({ id, reason: reasons.get(id) ?? 'filtered' }))
    for (const v of upserted) sub.sent.set(v.id, visible(v))
    for (const id of goneIds) sub.sent.delete(id)
    tab.deliver(JSON.stringify({ type: 'admin.delta', upserted, removed, at: new Date().toISOString() }), 'admin.delta')
  }

  private async endReasons(ids: string[]): Promise<Map<string, string>> {
    if (ids.length === 0) return new Map()
    const rows = await this.d.sql`select id, end_reason from sessions where id = any(${this.d.sql.array(ids)}::uuid[]) and status = 'ended'`
    return new Map(rows.map((r) => [r.id as string, r.end_reason as string]))
  }

  /** Active sessions under the filter, most recently active first, at most 500. */
  private async list(f: AdminFilter): Promise<{ views: SessionView[]; total: number }> {
    const views = await listSessions(this.d.sql, this.d.sessions, await this.d.settings.get(), f)
    return { views: views.slice(0, f.limit ?? SNAPSHOT_LIMIT), total: views.length }
  }
}
