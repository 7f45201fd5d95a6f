// The WebSocket hub of one node: the tabs' host (tab.ts), made of small parts: membership
// and fan-out (membership.ts), hello, resume and catch-up (resume.ts), the message
// handlers (handlers.ts) and the pings (pinger.ts). It owns the subscriber connection.
import type { FastifyBaseLogger } from 'fastify'
import type { Redis } from 'ioredis'
import type { Config } from '../config.js'
import { defineLogCommands } from '../infra/event-log.js'
import { isJson } from '../infra/input-hygiene.js'
import type { InfraKeys } from '../infra/keys.js'
import type { Metrics } from '../infra/metrics.js'
import { closeSubscriber, isCluster } from '../infra/redis.js'
import type { Presence } from '../presence/service.js'
import type { Sessions } from '../sessions/service.js'
import { type AdminHooks, MessageHandlers } from './handlers.js'
import { Membership } from './membership.js'
import type { ClientMessage, Hello } from './messages.js'
import { Pinger } from './pinger.js'
import { CLOSE } from './protocol.js'
import { Resume } from './resume.js'
import type { Tab, TabHost } from './tab.js'

export interface HubDeps {
  redis: Redis
  /** A connection of its own, used only for SUBSCRIBE. */
  subscriber: Redis
  keys: InfraKeys
  metrics: Metrics
  config: Config
  sessions: Sessions
  presence: Presence
  log: FastifyBaseLogger
  /** Admin feed hooks (the admin feature plugs in here, see useAdmin); `alert` gets each `admin.alert` frame. */
  admin?: AdminHooks
}

export class Hub implements TabHost {
  readonly log: FastifyBaseLogger
  readonly limits: TabHost['limits']
  private readonly members: Membership
  private readonly resume: Resume
  private readonly handlers: MessageHandlers
  private readonly pinger: Pinger
  private subscriberWasReady = false
  private closing: Promise<void> | undefined

  constructor(private readonly d: HubDeps) {
    this.log = d.log
    this.limits = {
      maxBadMessages: d.config.ws.maxBadMessages,
      maxBufferedBytes: d.config.ws.maxBufferedBytes,
      heartbeatIntervalMs: d.config.heartbeatIntervalSeconds * 1000,
    }
    defineLogCommands(d.redis)
    this.members = new Membership({ ...d, sharded: isCluster(d.redis) })
    this.resume = new Resume({
      ...d,
      logPlace: { redis: d.redis, keys: d.keys, ttlMs: d.config.eventLog.ttlSeconds * 1000 },
      membership: this.members,
      heartbeatIntervalMs: this.limits.heartbeatIntervalMs,
    })
    // A view change: every node's admin feed reloads the session (after the write, on the same connection).
    const adminChanged = (sessionId: string) => void this.d.redis.publish(this.d.keys.adminChanges, sessionId).catch(() => {})
    this.handlers = new MessageHandlers({ sessions: d.sessions, presence: d.presence, adminChanged, admin: () => this.d.admin })
    d.subscriber.on('message', (channel: string, frame: string) => this.onFrame(channel, frame))
    d.subscriber.on('smessage', (channel: string, frame: string) => this.onFrame(channel, frame))
    // ioredis re-subscribes by itself after a reconnect; what was published in between is
    // lost to pub/sub, so every tab catches up from its session's log. On a Cluster, the
    // shard subscribers are set up again after a failover or a slot move (subscribersReady).
    d.subscriber.on(isCluster(d.subscriber) ? 'subscribersReady' : 'ready', () => {
      if (this.subscriberWasReady) void this.resume.catchUpAll()
      this.subscriberWasReady = true
    })
    this.pinger = new Pinger({
      presence: d.presence,
      pingIntervalMs: d.config.ws.pingIntervalSeconds * 1000,
      feedIntervalMs: d.config.adminFeedIntervalMs,
      log: d.log,
    })
  }

  /** The admin feature plugs its live feed in here (it is registered after realtime). */
  useAdmin(admin: AdminHooks): void {
    this.d.admin = admin
  }

  async start(): Promise<void> {
    // On a Cluster every later subscribersReady is a set-up again (the first may come before or after this).
    if (this.d.subscriber.status === 'ready' || isCluster(this.d.subscriber)) this.subscriberWasReady = true
    await this.d.subscriber.subscribe(this.d.keys.broadcastChannel, this.d.keys.adminAlerts)
  }

  get size() {
    return this.members.tabs.size
  }

  /** Every socket from its upgrade on, so pings and shutdown reach it even before hello. */
  adopt(tab: Tab): void {
    this.members.add(tab)
    this.pinger.add(tab)
  }

  leave(tab: Tab): void {
    if (!this.members.remove(tab)) return
    this.pinger.remove(tab)
    this.d.admin?.unsubscribe(tab)
    this.members.unsubscribeFor(tab)
    if (tab.inPresence) this.d.presence.closeTab(tab.sessionId, tab).catch(() => {})
  }

  hello(tab: Tab, hello: Hello): Promise<void> {
    return this.resume.hello(tab, hello)
  }

  refill(tab: Tab): Promise<void> {
    return this.resume.refill(tab)
  }

  handle(tab: Tab, m: ClientMessage): Promise<void> {
    return this.handlers.handle(tab, m)
  }

  private onFrame(channel: string, frame: string) {
    if (channel === this.d.keys.adminAlerts) {
      // Only well-formed frames, as for the tabs.
      if (isJson(frame)) this.d.admin?.alert?.(frame)
      return
    }
    this.members.fanOut(channel, frame)
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
    return this.members.tabsOf(sessionId)
  }

  /** The subscriber's `ip:port` as Redis's CLIENT LIST shows it, so a test can kill exactly that connection. */
  subscriberAddress(): string | undefined {
    const { localAddress, localPort } = this.d.subscriber.stream ?? {}
    return localAddress && localPort ? `${localAddress}:${localPort}` : undefined
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.pinger.stop()
      for (const tab of [...this.members.tabs]) tab.close(CLOSE.goingAway, 'server shutting down')
      await closeSubscriber(this.d.subscriber)
    })()
    return this.closing
  }
}
