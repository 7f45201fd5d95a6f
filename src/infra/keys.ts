// Redis key and channel names (the layout is in docs/operations.md, "Redis key layout").
//
// Every key a script or a MULTI touches together shares one hash tag, so that the layout
// works on a Redis Cluster as it does on one Redis:
//   {s:<sessionId>}  a session's presence, tabs, seq, event log, state, flags, API budget and channel
//   {u:<userId>}     a user's state-cache generation and write mark, and the user's channel
//   {n:<username>}   a username's failed-login count and lockout (counted together)
//   {d:<shard>}      one of DEADLINE_SHARDS shards of the cross-session sets: the idle
//                    sweep's deadline lists and the activity write-behind's dirty set
// A session's shard follows from its id (shardOf), so the lists it is moved between are in
// one slot; the sweep, the reseed, the cleanup and the write-behind walk every shard.
// Keys used alone (the token cache, tickets, markers) need no tag.

/** How many shards the cross-session sets are split into. Fixed: changing it strands what the old shards hold. */
export const DEADLINE_SHARDS = 16

/** The deadline shard of a session (FNV-1a of its id). */
export function shardOf(sessionId: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < sessionId.length; i++) {
    h ^= sessionId.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return (h >>> 0) % DEADLINE_SHARDS
}

/** The keys of one deadline shard. */
export interface DeadlineShard {
  shard: number
  /** scored by last activity: sessions not yet flagged idle */
  active: string
  /** scored by last activity: flagged idle, not yet warned */
  idle: string
  /** scored by last activity: warned, waiting for the idle timeout */
  warned: string
  /** scored by last activity: warned before it went idle (the warning lead is longer than the time from idle to expiry) */
  warnedEarly: string
  /** scored by the end of the session's lifetime */
  lifetime: string
  /** sessions whose last activity changed since the last write-behind */
  dirty: string
  /** every deadline list of the shard, for removing a session from all of them */
  lists: string[]
}

export function redisKeys(prefix: string) {
  const s = (sessionId: string) => `${prefix}{s:${sessionId}}`
  const u = (userId: number) => `${prefix}{u:${userId}}`
  const n = (username: string) => `${prefix}{n:${username.toLowerCase()}}`
  const shards: DeadlineShard[] = Array.from({ length: DEADLINE_SHARDS }, (_, shard) => {
    const d = `${prefix}{d:${shard}}`
    const lists = { active: `${d}:due:active`, idle: `${d}:due:idle`, warned: `${d}:due:warned`, warnedEarly: `${d}:due:warned-early`, lifetime: `${d}:due:lifetime` }
    return { shard, ...lists, dirty: `${d}:dirty:activity`, lists: Object.values(lists) }
  })
  return {
    prefix,
    /** token hash → cached session record (cache-aside over PostgreSQL); looked up by the token alone, so untagged */
    sessionByToken: (tokenHash: string) => `${prefix}tok:${tokenHash}`,
    /** hash: lastActivity, view — the hot presence of one session */
    sessionPresence: (sessionId: string) => `${s(sessionId)}:presence`,
    /** sorted set: tabId → when the tab was last heard from (ms) */
    sessionTabs: (sessionId: string) => `${s(sessionId)}:tabs`,
    /** one-use realtime tickets already spent */
    usedTicket: (jti: string) => `${prefix}ticket:${jti}`,
    /** An identity provider's ID token (by its hash) that opened a session: accepted once. */
    usedIdToken: (hash: string) => `${prefix}idtoken:${hash}`,
    sessionSeq: (sessionId: string) => `${s(sessionId)}:seq`,
    sessionLog: (sessionId: string) => `${s(sessionId)}:log`,
    sessionVersion: (sessionId: string) => `${s(sessionId)}:version`,
    /** the session's channel: a shard channel (SSUBSCRIBE / SPUBLISH), in the session's slot */
    sessionChannel: (sessionId: string) => `${s(sessionId)}:events`,
    /** the session's active platform and state version, cached (sessions/state-cache.ts) */
    sessionState: (sessionId: string) => `${s(sessionId)}:state`,
    /** the API budget of a session (auth/rate-limits.ts), in its slot so that session_state spends it in the session's step */
    sessionBudget: (sessionId: string) => `${s(sessionId)}:budget`,
    /** the generation of a user's cached session states, and the mark of a write under way */
    userStateGen: (userId: number) => `${u(userId)}:state-gen`,
    userStateWriting: (userId: number) => `${u(userId)}:state-writing`,
    /** set with the session's terminal event, in one step: it is published once, and input after it writes nothing */
    sessionEnded: (sessionId: string) => `${s(sessionId)}:ended`,
    /** set with the session's session_ended_elsewhere notices: they go out once */
    sessionNoticed: (sessionId: string) => `${s(sessionId)}:noticed`,
    /** set with the announcement of one lock release (its audit event id): it goes out once */
    lockReleaseAnnounced: (auditId: number) => `${prefix}lockrel:${auditId}`,
    /** a classic channel: tabs of the user's sessions may be on every node */
    userChannel: (userId: number) => `${u(userId)}:events`,
    broadcastChannel: `${prefix}broadcast`,
    /** The idle sweep's deadline lists and the dirty set of the shard that holds this session. */
    deadlines: (sessionId: string): DeadlineShard => shards[shardOf(sessionId)]!,
    /** every shard, for the sweep, the reseed, the cleanup and the write-behind to walk */
    deadlineShards: shards,
    /** set (with a TTL the sweep keeps renewing) once the lists hold every active session: gone when Redis lost its data */
    dueSeeded: `${prefix}due:seeded`,
    settingsChannel: `${prefix}settings`,
    /** `admin.alert` frames: every node's hub hands them to its subscribed admin tabs */
    adminAlerts: `${prefix}admin:alerts`,
    /** ids of sessions with a possibly admin-visible change: every node's admin feed reloads just those (a classic channel) */
    adminChanges: `${prefix}admin:changes`,
    /** an open alert window of one type and user (TTL: the window): a second raise within it is a no-op */
    alertWindow: (subject: string) => `${prefix}alert-window:${subject}`,
    /** failed logins of one username (known or not, so both answer alike) within the window */
    failedLogins: (username: string) => `${n(username)}:failed`,
    /** a lockout of a username, set by the failure that began it (a known account's is also in PostgreSQL) */
    lockedName: (username: string) => `${n(username)}:locked`,
    rateLimit: `${prefix}rl:`,
    /** BullMQ's prefix: one hash tag for every queue, as BullMQ requires on a Cluster */
    bullPrefix: `${prefix}{bull}`,
  }
}

export type RedisKeys = ReturnType<typeof redisKeys>

/** Session ids by the deadline shard that holds them, so that one command per shard does for all. */
export function byShard(keys: RedisKeys, sessionIds: string[]): Map<DeadlineShard, string[]> {
  const out = new Map<DeadlineShard, string[]>()
  for (const id of sessionIds) {
    const d = keys.deadlines(id)
    const ids = out.get(d)
    if (ids) ids.push(id)
    else out.set(d, [id])
  }
  return out
}
