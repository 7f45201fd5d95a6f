// The event bus: one call publishes a session event (docs/architecture.md, "How an event flows").
import { randomBytes } from 'node:crypto'
import type { Redis, Result } from 'ioredis'
import type { InfraKeys } from './keys.js'
import { crossSlot, isCluster } from './redis.js'
import type { Metrics } from './metrics.js'
import { publishOnceLua, publishTerminalEventLua } from './publish-once.lua.js'
import { publishSessionEventLua, publishWhileListedLua } from './publish-session-event.lua.js'
import { SERVER_MESSAGES } from '../realtime/protocol.js'

export type SessionEvent = { type: string } & Record<string, unknown>

export interface BusOptions {
  redis: Redis
  keys: InfraKeys
  metrics: Metrics
  eventLog: { max: number; ttlSeconds: number }
}

export class EventBus {
  /** Session channels are shard channels (SPUBLISH / SSUBSCRIBE) on a Cluster, classic ones on one Redis. */
  readonly sharded: boolean

  constructor(private readonly o: BusOptions) {
    this.sharded = isCluster(o.redis)
    o.redis.defineCommand('tesseraPublishSessionEvent', { numberOfKeys: 5, lua: publishSessionEventLua })
    o.redis.defineCommand('tesseraPublishTerminalEvent', { numberOfKeys: 5, lua: publishTerminalEventLua })
    o.redis.defineCommand('tesseraPublishWhileListed', { numberOfKeys: 6, lua: publishWhileListedLua })
    o.redis.defineCommand('tesseraPublishOnce', { numberOfKeys: 1, lua: publishOnceLua })
  }

  /**
   * Appends `event` to the session's log with the next `seq` and publishes it on the
   * session's channel. `keepUntil` is when the session's lifetime ends: its seq counter
   * lives that long (plus the log TTL) so seq never restarts under a live session.
   * `version`, for state changes, drops an event that lost a race (returns 0); so is any
   * event after the session's terminal one.
   */
  async publishSessionEvent(sessionId: string, event: SessionEvent, keepUntil: Date, version = 0): Promise<number> {
    return this.logAndPublish('tesseraPublishSessionEvent', sessionId, event, keepUntil, { version })
  }

  /**
   * Publishes `session.state { state }`, the whole state at state `version`: dropped (0)
   * when a newer version has been published since it was read, so that tabs never step
   * back; one as new goes out (a role change does not move the version).
   */
  async publishState(sessionId: string, state: { version: number }, keepUntil: Date): Promise<number> {
    return this.logAndPublish('tesseraPublishSessionEvent', sessionId, { type: SERVER_MESSAGES.sessionState, state }, keepUntil, { version: state.version, whole: true })
  }

  /**
   * Starts a new session's log at seq 0. A session whose counter is missing later has lost
   * it with Redis, and its next event is numbered from the clock (publish-session-event.lua.ts).
   */
  async startLog(sessionId: string, keepUntil: Date): Promise<void> {
    await this.o.redis.set(this.o.keys.sessionSeq(sessionId), 0, 'PXAT', keepUntil.getTime() + this.o.eventLog.ttlSeconds * 1000, 'NX')
  }

  /**
   * Like publishSessionEvent, but only while no input is newer than the last activity
   * `listed.score` the sweep moved the session on with (0 otherwise; input writes it to the
   * session's presence hash, `listed.presence`): the idle sweep's events, which input may
   * have overtaken since the move.
   */
  async publishWhileListed(sessionId: string, event: SessionEvent, keepUntil: Date, listed: { score: string; presence: string }): Promise<number> {
    return this.logAndPublish('tesseraPublishWhileListed', sessionId, event, keepUntil, {}, [listed.presence], [sessionId, listed.score])
  }

  /**
   * Publishes a session's terminal event (expired, terminated, logged out) at most once:
   * 0 when it was published before. It also sets the session's ended flag, which stops
   * late input from writing presence again (store.ts).
   */
  async publishTerminalEvent(sessionId: string, event: SessionEvent): Promise<number> {
    return this.logAndPublish('tesseraPublishTerminalEvent', sessionId, event, new Date())
  }

  /** `moreKeys` and `moreArgs` follow the usual ones (the scripts that take them say what they are). */
  private async logAndPublish(
    command: PublishCommand,
    sessionId: string,
    event: SessionEvent,
    keepUntil: Date,
    { version = 0, whole = false }: { version?: number; whole?: boolean } = {},
    moreKeys: string[] = [],
    moreArgs: string[] = [],
  ) {
    const json = JSON.stringify({ ...event, at: new Date().toISOString() })
    const head = `${json.slice(0, -1)},`
    const { keys, eventLog } = this.o
    const expireAt = keepUntil.getTime() + eventLog.ttlSeconds * 1000
    const seq = await this.o.redis[command](
      keys.sessionSeq(sessionId),
      keys.sessionLog(sessionId),
      keys.sessionVersion(sessionId),
      keys.sessionEnded(sessionId),
      keys.sessionChannel(sessionId),
      ...moreKeys,
      this.sharded ? 'S' : 'P',
      head,
      eventLog.max,
      eventLog.ttlSeconds,
      expireAt,
      version,
      keys.adminChanges,
      sessionId,
      whole ? '1' : '0',
      randomBytes(9).toString('base64url'),
      ...moreArgs,
    )
    if (seq > 0) this.o.metrics.eventsPublished.inc({ type: event.type })
    return seq
  }

  /** Events for every session of one user that are not part of any session's log. */
  async publishUserEvent(userId: number, event: SessionEvent): Promise<void> {
    await this.o.redis.publish(this.o.keys.userChannel(userId), JSON.stringify({ ...event, at: new Date().toISOString() }))
    this.o.metrics.eventsPublished.inc({ type: event.type })
  }

  /** Events for every connected tab of every session (lock changes): not part of any log. */
  async publishBroadcast(event: SessionEvent): Promise<void> {
    await this.o.redis.publish(this.o.keys.broadcastChannel, JSON.stringify({ ...event, at: new Date().toISOString() }))
    this.o.metrics.eventsPublished.inc({ type: event.type })
  }

  /** Sessions whose admin-visible state changed without a logged event (login, role change). */
  async publishAdminChange(sessionIds: string[]): Promise<void> {
    if (sessionIds.length > 0) await this.o.redis.publish(this.o.keys.adminChanges, sessionIds.join(','))
  }

  /**
   * Like publishUserEvent / publishBroadcast (no userId: every tab), but at most once per
   * `onceKey` within `ttlSeconds`. Returns whether this call published.
   */
  async publishOnce(onceKey: string, ttlSeconds: number, to: { userId: number } | 'broadcast', event: SessionEvent): Promise<boolean> {
    const channel = to === 'broadcast' ? this.o.keys.broadcastChannel : this.o.keys.userChannel(to.userId)
    const frame = JSON.stringify({ ...event, at: new Date().toISOString() })
    const published = (await this.o.redis.tesseraPublishOnce(onceKey, ttlSeconds * 1000, channel, frame)) === 1
    if (published) this.o.metrics.eventsPublished.inc({ type: event.type })
    return published
  }

  /**
   * Shortens these keys' lives to the event log's TTL (never lengthens them): what an ending
   * left behind once nothing can repeat it (see Sessions.settled).
   */
  async expireWithLog(keys: string[]): Promise<void> {
    if (keys.length === 0) return
    const pipeline = crossSlot(this.o.redis)
    for (const key of keys) pipeline.pexpire(key, this.o.eventLog.ttlSeconds * 1000, 'LT')
    await pipeline.exec()
  }

  async currentSeq(sessionId: string): Promise<number> {
    return Number((await this.o.redis.get(this.o.keys.sessionSeq(sessionId))) ?? 0)
  }
}

declare module 'ioredis' {
  interface RedisCommander<Context> {
    /** The bus's publishing scripts (defined by EventBus): the event's seq, or 0 when it was not published. */
    tesseraPublishSessionEvent(...args: (string | number)[]): Result<number, Context>
    tesseraPublishTerminalEvent(...args: (string | number)[]): Result<number, Context>
    tesseraPublishWhileListed(...args: (string | number)[]): Result<number, Context>
    /** 1 when the frame was published, 0 when it had been before. */
    tesseraPublishOnce(...args: (string | number)[]): Result<number, Context>
  }
}

type PublishCommand = 'tesseraPublishSessionEvent' | 'tesseraPublishTerminalEvent' | 'tesseraPublishWhileListed'
