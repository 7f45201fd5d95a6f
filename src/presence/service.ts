// Presence of a session's tabs in Redis: which tabs are open (a sorted set scored by when
// each was last heard from, so tabs of a crashed node fade out) and the current view.
import type { Redis } from 'ioredis'
import type { RedisKeys } from '../infra/keys.js'

export class Presence {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  async openTab(sessionId: string, tabId: string, view: string, keepUntil: number): Promise<void> {
    const tabs = this.keys.sessionTabs(sessionId)
    const presence = this.keys.sessionPresence(sessionId)
    await this.redis
      .multi()
      .zadd(tabs, Date.now(), tabId)
      .pexpireat(tabs, keepUntil)
      .hset(presence, 'view', view)
      .pexpireat(presence, keepUntil)
      .exec()
  }

  /** A heartbeat or any message from the tab: it is still there. */
  async seeTab(sessionId: string, tabId: string, view?: string): Promise<void> {
    const pipeline = this.redis.pipeline().zadd(this.keys.sessionTabs(sessionId), 'XX', Date.now(), tabId)
    if (view !== undefined) pipeline.hset(this.keys.sessionPresence(sessionId), 'view', view)
    await pipeline.exec()
  }

  async setView(sessionId: string, view: string): Promise<void> {
    await this.redis.hset(this.keys.sessionPresence(sessionId), 'view', view)
  }

  async closeTab(sessionId: string, tabId: string): Promise<void> {
    await this.redis.zrem(this.keys.sessionTabs(sessionId), tabId)
  }
}
