// Redis key names: the shared prefix and hash tags, and the keys of infra's own parts (the
// event log, the channels, the API budget, the queues). Each feature declares its own keys
// next to its store (sessions/keys.ts, auth/keys.ts, realtime/keys.ts, alerts/keys.ts); the
// whole layout is in docs/operations.md, "Redis key layout".
//
// Every key a script or a MULTI touches together shares one hash tag, so that the layout
// works on a Redis Cluster as it does on one Redis:
//   {s:<sessionId>}  a session's presence, tabs, seq, event log, state, flags, API budget and channel
//   {u:<userId>}     a user's state-cache generation and write mark, and the user's channel
//   {n:<username>}   a username's failed-login count and lockout (counted together)
//   {d:<shard>}      one of DEADLINE_SHARDS shards of the cross-session sets: the idle
//                    sweep's deadline lists and the activity write-behind's dirty set
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

/** The prefix with each hash tag: what every feature's keys are built from. */
export function keyspace(prefix: string) {
  return {
    prefix,
    /** `<prefix>{s:<id>}`: a session's slot */
    session: (sessionId: string) => `${prefix}{s:${sessionId}}`,
    /** `<prefix>{u:<id>}`: a user's slot */
    user: (userId: number) => `${prefix}{u:${userId}}`,
    /** `<prefix>{n:<username>}`: a username's slot, case-folded */
    username: (username: string) => `${prefix}{n:${username.toLowerCase()}}`,
    /** `<prefix>{d:<n>}`: one deadline shard's slot */
    shard: (shard: number) => `${prefix}{d:${shard}}`,
  }
}

export type Keyspace = ReturnType<typeof keyspace>

/** The keys of infra's parts: the event bus and its log, the API budget, BullMQ. */
export function infraKeys(prefix: string) {
  const space = keyspace(prefix)
  const s = space.session
  return {
    prefix,
    space,
    sessionSeq: (sessionId: string) => `${s(sessionId)}:seq`,
    sessionLog: (sessionId: string) => `${s(sessionId)}:log`,
    /** the state version of the session's last published platform event */
    sessionVersion: (sessionId: string) => `${s(sessionId)}:version`,
    /** set with the session's terminal event, in one step: it is published once, and input after it writes nothing */
    sessionEnded: (sessionId: string) => `${s(sessionId)}:ended`,
    /** the session's channel: a shard channel (SSUBSCRIBE / SPUBLISH), in the session's slot */
    sessionChannel: (sessionId: string) => `${s(sessionId)}:events`,
    /** a classic channel: tabs of the user's sessions may be on every node */
    userChannel: (userId: number) => `${space.user(userId)}:events`,
    broadcastChannel: `${prefix}broadcast`,
    settingsChannel: `${prefix}settings`,
    /** `admin.alert` frames: every node's hub hands them to its subscribed admin tabs */
    adminAlerts: `${prefix}admin:alerts`,
    /** ids of sessions with a possibly admin-visible change: every node's admin feed reloads just those (a classic channel) */
    adminChanges: `${prefix}admin:changes`,
    /** the API budget of a session (budget.ts), in its slot so that session_state spends it in the session's step */
    sessionBudget: (sessionId: string) => `${s(sessionId)}:budget`,
    rateLimit: `${prefix}rl:`,
    /** BullMQ's prefix: one hash tag for every queue, as BullMQ requires on a Cluster */
    bullPrefix: `${prefix}{bull}`,
  }
}

export type InfraKeys = ReturnType<typeof infraKeys>
