// Presence of a session's tabs in Redis: which tabs are open and the current view. The tabs
// are a sorted set with one member per open socket, scored by when it was last heard from,
// so that tabs of a crashed node fade out. Members are per socket, not per tabId: a tab
// that reconnects with its tabId while its old socket is not yet reaped has two members,
// and the old socket's close removes only its own. The count is of distinct tabIds.
import type { ClientContext, Redis, Result } from 'ioredis'
import type { SessionSlotKeys } from '../sessions/keys.js'
import type { Presence as SessionPresence } from '../sessions/records.js'
import { currentSeqFunctionLua } from '../infra/event-log.js'
import { inOneWrite } from '../infra/redis.js'
import { type TabSocket, tabIdOf, tabMember } from '../sessions/tabs.js'

// KEYS: seq counter, event log, the session's ended flag, tabs, presence
// ARGV: log ttl ms, stale-before ms, now ms, member, view, keep-until ms, the admin-changes
// channel, the session id
// A tab's hello in one step: the session's current seq and, unless the session has ended,
// the socket in presence (dropping the sockets of crashed nodes) with its view, what the
// welcome counts (the last activity and the sockets still there), and the admin change. The
// ended flag is set in the same step as the terminal event is logged, so either that event
// is at or below the seq answered here (the tab is told why, never counted), or it comes
// after it and reaches the tab, which is subscribed by then, like any event.
const openTabLua = `${currentSeqFunctionLua}
local seq = currentSeq(KEYS[1], KEYS[2], ARGV[1])
if redis.call('EXISTS', KEYS[3]) == 1 then return {seq, 1} end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', ARGV[2])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[4])
redis.call('PEXPIREAT', KEYS[4], ARGV[6])
redis.call('HSET', KEYS[5], 'view', ARGV[5])
redis.call('PEXPIREAT', KEYS[5], ARGV[6])
redis.call('PUBLISH', ARGV[7], ARGV[8])
return {seq, 0, redis.call('HGET', KEYS[5], 'lastActivity') or '', redis.call('ZRANGE', KEYS[4], 0, -1)}
`

// KEYS: tabs; ARGV: member, the admin-changes channel, the session id
// The socket out of presence, and the admin change, in one command.
const closeTabLua = `
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
`

// The view, with the expiry the hash always has; never for a session that has ended, whose
// presence is forgotten (a late message would bring back a hash that nothing removes).
const setViewChunk = `
local function setView(presence, ended, view, expireAt)
  if redis.call('EXISTS', ended) == 1 then return 0 end
  redis.call('HSET', presence, 'view', view)
  redis.call('PEXPIREAT', presence, expireAt)
  return 1
end
`

// KEYS: presence, the session's ended flag; ARGV: view, expire-at ms
const setViewLua = `${setViewChunk}
return setView(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
`

// KEYS: tabs, presence, the session's ended flag; ARGV: now ms, member, keep-until ms, view ('': none)
// A socket still there (a heartbeat, a ping round): one command per socket, and the sockets
// seen in one turn of the event loop in one socket write (seeTabs). An explicit pipeline per
// heartbeat was a socket write of its own and copied every defined script onto itself:
// at 10,000 heartbeats a second that alone saturated a core (P3, docs/benchmarks.md).
const seeTabLua = `${setViewChunk}
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
if ARGV[4] ~= '' then setView(KEYS[2], KEYS[3], ARGV[4], ARGV[3]) end
return 1
`

declare module 'ioredis' {
  interface RedisCommander<Context extends ClientContext = { type: 'default' }> {
    /** 1 when the view was set, 0 for a session that has ended. */
    tesseraSetView(presence: string, ended: string, view: string, expireAt: number): Result<number, Context>
    tesseraSeeTab(tabs: string, presence: string, ended: string, now: number, member: string, keepUntil: number, view: string): Result<number, Context>
    /** openTabLua: the seq and 1 for a session that has ended; else the seq, 0, the last activity ('' when unknown) and the tabs' members. */
    tesseraOpenTab(...args: (string | number)[]): Result<[number, 1] | [number, 0, string, string[]], Context>
    tesseraCloseTab(tabs: string, member: string, adminChanges: string, sessionId: string): Result<null, Context>
  }
}

/** A tab's hello step: the session's seq then, and its presence with the tab counted, or that it has ended. */
export type OpenedTab = { seq: number; ended: true } | ({ seq: number; ended: false } & Pick<SessionPresence, 'lastActivity' | 'tabs'>)

/** A socket seen alive, with the session's end (how long its presence is kept) and its view if it told one. */
export interface SeenTab {
  sessionId: string
  socket: TabSocket
  keepUntil: number
  view?: string
}

export class Presence {
  /** The tabs seen in this turn of the event loop, written together at its end (seeTabs). */
  private seenThisTurn: { seen: SeenTab[]; written: Promise<void> } | null = null

  constructor(
    private readonly redis: Redis,
    private readonly keys: SessionSlotKeys,
    /** A socket not heard from for this long no longer counts (two ping intervals). */
    private readonly staleMs: number,
    /** How long a seq numbering started by a hello lives (the event log's TTL). */
    private readonly logTtlMs: number,
  ) {
    redis.defineCommand('tesseraSetView', { numberOfKeys: 2, lua: setViewLua })
    redis.defineCommand('tesseraSeeTab', { numberOfKeys: 3, lua: seeTabLua })
    redis.defineCommand('tesseraOpenTab', { numberOfKeys: 5, lua: openTabLua })
    redis.defineCommand('tesseraCloseTab', { numberOfKeys: 1, lua: closeTabLua })
  }

  /**
   * A tab's hello step (openTabLua): the seq, and the socket and its view in presence unless
   * the session has ended. Every node's admin feed hears of the new tab.
   */
  async openTab(sessionId: string, socket: TabSocket, view: string, keepUntil: number): Promise<OpenedTab> {
    const now = Date.now()
    const k = this.keys
    const keys = [k.sessionSeq(sessionId), k.sessionLog(sessionId), k.sessionEnded(sessionId), k.sessionTabs(sessionId), k.sessionPresence(sessionId)]
    const step = await this.redis.tesseraOpenTab(...keys, this.logTtlMs, now - this.staleMs, now, tabMember(socket), view, keepUntil, k.adminChanges, sessionId)
    if (step[1] === 1) return { seq: step[0], ended: true }
    const [seq, , lastActivity, members] = step
    // One member per socket: a tab whose old socket is not yet reaped counts once.
    return { seq, ended: false, lastActivity: lastActivity === '' ? null : Number(lastActivity), tabs: new Set(members.map(tabIdOf)).size }
  }

  /**
   * The sockets are still there (a server ping round, or a heartbeat). A member is added back
   * when it is missing (Redis lost it), so an open tab is always counted again. The tabs seen
   * in one turn of the event loop (every heartbeat that came in it) go to Redis together at
   * its end, in one socket write; the promise settles when all of them are written.
   */
  seeTabs(seen: SeenTab[]): Promise<void> {
    if (!this.seenThisTurn) {
      const seenNow: SeenTab[] = []
      const written = new Promise((resolve) => setImmediate(resolve)).then(() => {
        this.seenThisTurn = null
        return this.writeSeen(seenNow)
      })
      this.seenThisTurn = { seen: seenNow, written }
    }
    for (const s of seen) this.seenThisTurn.seen.push(s)
    return this.seenThisTurn.written
  }

  private async writeSeen(seen: SeenTab[]): Promise<void> {
    const now = Date.now()
    const k = this.keys
    await Promise.all(
      inOneWrite(this.redis, () =>
        seen.map(({ sessionId, socket, keepUntil, view }) =>
          this.redis.tesseraSeeTab(k.sessionTabs(sessionId), k.sessionPresence(sessionId), k.sessionEnded(sessionId), now, tabMember(socket), keepUntil, view ?? ''),
        ),
      ),
    )
  }

  async setView(sessionId: string, view: string, keepUntil: number): Promise<void> {
    await this.redis.tesseraSetView(this.keys.sessionPresence(sessionId), this.keys.sessionEnded(sessionId), view, keepUntil)
  }

  /** Takes the socket out of presence; every node's admin feed hears of it. */
  async closeTab(sessionId: string, socket: TabSocket): Promise<void> {
    await this.redis.tesseraCloseTab(this.keys.sessionTabs(sessionId), tabMember(socket), this.keys.adminChanges, sessionId)
  }
}
