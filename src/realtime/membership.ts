// Which of this node's tabs belong to which session and user, the Redis subscription of
// each session and user that has a tab here, and the fan-out of each frame heard on them.
import type { Redis } from 'ioredis'
import type { InfraKeys } from '../infra/keys.js'
import type { Metrics } from '../infra/metrics.js'
import type { Tab } from './tab.js'

export interface MembershipDeps {
  /** A connection of its own, used only for SUBSCRIBE (user channels) and SSUBSCRIBE (session channels). */
  subscriber: Pick<Redis, 'subscribe' | 'unsubscribe' | 'ssubscribe' | 'sunsubscribe'>
  keys: Pick<InfraKeys, 'prefix' | 'sessionChannel' | 'userChannel' | 'broadcastChannel'>
  /** Session channels are shard channels (SSUBSCRIBE): on a Cluster (EventBus.sharded). */
  sharded: boolean
  metrics: Pick<Metrics, 'sockets'>
}

type Frame = { type: string; seq?: number; at?: string; sessionId?: string }

export class Membership {
  /** Every socket from its upgrade on. */
  readonly tabs = new Set<Tab>()
  readonly bySession = new Map<string, Set<Tab>>()
  private readonly byUser = new Map<number, Set<Tab>>()
  /** Per channel, the SUBSCRIBE every joining tab waits for (not only the first one). */
  private readonly subscriptions = new Map<string, Promise<void>>()
  private readonly sessionChannel: RegExp
  private readonly userChannel: RegExp

  constructor(private readonly d: MembershipDeps) {
    this.sessionChannel = new RegExp(`^${escapeRegExp(d.keys.prefix)}\\{s:([^}]+)\\}:events$`)
    this.userChannel = new RegExp(`^${escapeRegExp(d.keys.prefix)}\\{u:(\\d+)\\}:events$`)
  }

  add(tab: Tab): void {
    this.tabs.add(tab)
    this.d.metrics.sockets.set(this.tabs.size)
  }

  /** Resolves once this node hears the tab's session and user channels. */
  async join(tab: Tab): Promise<void> {
    addTo(this.bySession, tab.sessionId, tab)
    addTo(this.byUser, tab.userId, tab)
    await Promise.all([this.subscribed(this.d.keys.sessionChannel(tab.sessionId), this.d.sharded), this.subscribed(this.d.keys.userChannel(tab.userId), false)])
  }

  /** False when the tab was not a member (left before). */
  remove(tab: Tab): boolean {
    if (!this.tabs.delete(tab)) return false
    this.d.metrics.sockets.set(this.tabs.size)
    return true
  }

  /** After remove(): the tab's channels are left when it was their last tab here. */
  unsubscribeFor(tab: Tab): void {
    if (removeFrom(this.bySession, tab.sessionId, tab)) this.unsubscribe(this.d.keys.sessionChannel(tab.sessionId), this.d.sharded)
    if (removeFrom(this.byUser, tab.userId, tab)) this.unsubscribe(this.d.keys.userChannel(tab.userId), false)
  }

  /**
   * The channel's SUBSCRIBE, sent when the node's first tab needs it; a failed one is sent
   * again by the next. On a Cluster a session's channel is a shard channel (SSUBSCRIBE),
   * heard from the primary that owns the session's slot, and only there.
   */
  private subscribed(channel: string, sharded: boolean): Promise<void> {
    let ready = this.subscriptions.get(channel)
    if (!ready) {
      const sent = (sharded ? this.d.subscriber.ssubscribe(channel) : this.d.subscriber.subscribe(channel)).then(() => undefined)
      ready = sent
      this.subscriptions.set(channel, sent)
      sent.catch(() => {
        if (this.subscriptions.get(channel) === sent) this.subscriptions.delete(channel)
      })
    }
    return ready
  }

  private unsubscribe(channel: string, sharded: boolean) {
    this.subscriptions.delete(channel)
    ;(sharded ? this.d.subscriber.sunsubscribe(channel) : this.d.subscriber.unsubscribe(channel)).catch(() => {})
  }

  /** Hands a frame heard on a session, user or broadcast channel to this node's tabs of it. */
  fanOut(channel: string, frame: string): void {
    let parsed: Frame
    try {
      // A frame of this service's own (the bus serialised it).
      parsed = JSON.parse(frame)
    } catch {
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

  /** Tabs of one session on this node. */
  tabsOf(sessionId: string): Tab[] {
    return [...(this.bySession.get(sessionId) ?? [])]
  }
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
