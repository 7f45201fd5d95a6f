// Presence of a session's tabs in Redis: which tabs are open and the current view. The tabs
// are a sorted set with one member per open socket, scored by when it was last heard from,
// so that tabs of a crashed node fade out. Members are per socket, not per tabId: a tab
// that reconnects with its tabId while its old socket is not yet reaped has two members,
// and the old socket's close removes only its own. The count is of distinct tabIds.
import type { ChainableCommander, ClientContext, Redis, Result } from 'ioredis'
import type { SessionSlotKeys } from '../sessions/keys.js'
import type { Presence as SessionPresence } from '../sessions/records.js'
import { crossSlot } from '../infra/redis.js'
import { type TabSocket, tabIdOf, tabMember } from '../sessions/tabs.js'

// KEYS: tabs, presence; ARGV: stale-before ms, now ms, member, view, keep-until ms
// Adds the socket (dropping the sockets of crashed nodes) and the view, and answers what
// the tab's welcome counts: the session's last activity and the sockets that are still
// there. One script, not a MULTI of five commands and a read after it: every hello runs it.
const openTabLua = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[5])
redis.call('HSET', KEYS[2], 'view', ARGV[4])
redis.call('PEXPIREAT', KEYS[2], ARGV[5])
return {redis.call('HGET', KEYS[2], 'lastActivity') or '', redis.call('ZRANGE', KEYS[1], 0, -1)}
`

// KEYS: presence, the session's ended flag; ARGV: view, expire-at ms
// The view, with the expiry the hash always has; never for a session that has ended, whose
// presence is forgotten (a late message would bring back a hash that nothing removes).
const setViewLua = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'view', ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1
`

declare module 'ioredis' {
  interface RedisCommander<Context extends ClientContext = { type: 'default' }> {
    /** 1 when the view was set, 0 for a session that has ended. */
    tesseraSetView(presence: string, ended: string, view: string, expireAt: number): Result<number, Context>
    /** The session's last activity ('' when unknown) and the members of its tabs set. */
    tesseraOpenTab(tabs: string, presence: string, staleBefore: number, now: number, member: string, view: string, keepUntil: number): Result<[string, string[]], Context>
  }
}

/** What a tab's welcome needs of presence: the session's last activity and its open tabs. */
export type OpenedPresence = Pick<SessionPresence, 'lastActivity' | 'tabs'>

export class Presence {
  constructor(
    private readonly redis: Redis,
    private readonly keys: SessionSlotKeys,
    /** A socket not heard from for this long no longer counts (two ping intervals). */
    private readonly staleMs: number,
  ) {
    redis.defineCommand('tesseraSetView', { numberOfKeys: 2, lua: setViewLua })
    redis.defineCommand('tesseraOpenTab', { numberOfKeys: 2, lua: openTabLua })
  }

  /** Adds the socket and its view; answers the session's presence with it counted. */
  async openTab(sessionId: string, socket: TabSocket, view: string, keepUntil: number): Promise<OpenedPresence> {
    const now = Date.now()
    const k = this.keys
    const [lastActivity, members] = await this.redis.tesseraOpenTab(k.sessionTabs(sessionId), k.sessionPresence(sessionId), now - this.staleMs, now, tabMember(socket), view, keepUntil)
    // One member per socket: a tab whose old socket is not yet reaped counts once.
    return { lastActivity: lastActivity === '' ? null : Number(lastActivity), tabs: new Set(members.map(tabIdOf)).size }
  }

  /**
   * The sockets are still there (a server ping round, or a heartbeat). A member is added back
   * when it is missing (Redis lost it), so an open tab is always counted again.
   */
  async seeTabs(seen: { sessionId: string; socket: TabSocket; keepUntil: number; view?: string }[]): Promise<void> {
    if (seen.length === 0) return
    const now = Date.now()
    const pipeline = crossSlot(this.redis)
    for (const { sessionId, socket, keepUntil, view } of seen) {
      const tabs = this.keys.sessionTabs(sessionId)
      pipeline.zadd(tabs, now, tabMember(socket)).pexpireat(tabs, keepUntil)
      if (view !== undefined) this.setViewIn(pipeline, sessionId, view, keepUntil)
    }
    await pipeline.exec()
  }

  async setView(sessionId: string, view: string, keepUntil: number): Promise<void> {
    await this.setViewIn(this.redis, sessionId, view, keepUntil)
  }

  private setViewIn(commands: Redis | ChainableCommander, sessionId: string, view: string, keepUntil: number) {
    return commands.tesseraSetView(this.keys.sessionPresence(sessionId), this.keys.sessionEnded(sessionId), view, keepUntil)
  }

  async closeTab(sessionId: string, socket: TabSocket): Promise<void> {
    await this.redis.zrem(this.keys.sessionTabs(sessionId), tabMember(socket))
  }
}
