// Every Redis key and channel name, in one place. Keys of one session share the
// `{sessionId}` hash tag so that they land on one slot of a Redis Cluster.
export function redisKeys(prefix: string) {
  const s = (sessionId: string) => `${prefix}{${sessionId}}`
  const due = (name: string) => `${prefix}due:${name}`
  return {
    prefix,
    /** token hash → cached session record (cache-aside over PostgreSQL) */
    sessionByToken: (tokenHash: string) => `${prefix}tok:${tokenHash}`,
    /** hash: lastActivity, flushedAt, … — the hot presence of one session */
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
    sessionChannel: (sessionId: string) => `${s(sessionId)}:events`,
    /** the session's active platform and state version, cached (sessions/state-cache.ts) */
    sessionState: (sessionId: string) => `${s(sessionId)}:state`,
    /** the generation of a user's cached session states, and the mark of a write under way */
    userStateGen: (userId: number) => `${prefix}user:${userId}:state-gen`,
    userStateWriting: (userId: number) => `${prefix}user:${userId}:state-writing`,
    /** set with the session's terminal event, in one step: it is published once, and input after it writes nothing */
    sessionEnded: (sessionId: string) => `${s(sessionId)}:ended`,
    /** set with the session's session_ended_elsewhere notices: they go out once */
    sessionNoticed: (sessionId: string) => `${s(sessionId)}:noticed`,
    /** set with the announcement of one lock release (its audit event id): it goes out once */
    lockReleaseAnnounced: (auditId: number) => `${prefix}lockrel:${auditId}`,
    userChannel: (userId: number) => `${prefix}user:${userId}:events`,
    broadcastChannel: `${prefix}broadcast`,
    // The idle sweep's deadline lists (sorted sets of session ids): a tick reads only what is due.
    /** scored by last activity: sessions not yet flagged idle */
    dueActive: due('active'),
    /** scored by last activity: flagged idle, not yet warned */
    dueIdle: due('idle'),
    /** scored by last activity: warned, waiting for the idle timeout */
    dueWarned: due('warned'),
    /** scored by last activity: warned before it went idle (the warning lead is longer than the time from idle to expiry) */
    dueWarnedEarly: due('warned-early'),
    /** scored by the end of the session's lifetime */
    dueLifetime: due('lifetime'),
    /** set (with a TTL the sweep keeps renewing) once the lists hold every active session: gone when Redis lost its data */
    dueSeeded: due('seeded'),
    /** every deadline list, for removing a session from all of them */
    deadlineLists: ['active', 'idle', 'warned', 'warned-early', 'lifetime'].map(due),
    /** sessions whose last activity changed since the last write-behind */
    dirtyActivity: `${prefix}dirty:activity`,
    settingsChannel: `${prefix}settings`,
    /** `admin.alert` frames: every node's hub hands them to its subscribed admin tabs */
    adminAlerts: `${prefix}admin:alerts`,
    /** ids of sessions with a possibly admin-visible change: every node's admin feed reloads just those */
    adminChanges: `${prefix}admin:changes`,
    /** an open alert window of one type and user (TTL: the window): a second raise within it is a no-op */
    alertWindow: (subject: string) => `${prefix}alert-window:${subject}`,
    /** failed logins of one username (known or not, so both answer alike) within the window */
    failedLogins: (username: string) => `${prefix}failed:${username.toLowerCase()}`,
    /** a lockout of a username, set by the failure that began it (a known account's is also in PostgreSQL) */
    lockedName: (username: string) => `${prefix}locked:${username.toLowerCase()}`,
    rateLimit: `${prefix}rl:`,
    bullPrefix: `${prefix}bull`,
  }
}

export type RedisKeys = ReturnType<typeof redisKeys>
