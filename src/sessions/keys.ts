// The sessions feature's Redis keys. Presence (the hash, the tabs, the deadline lists) is
// declared here, not in presence/: the session's own one-step scripts (the token lookup of
// session_state, an ending) write it in the same step as the session's other keys.
import { DEADLINE_SHARDS, type InfraKeys, shardOf } from '../infra/keys.js'

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

export function sessionKeys({ prefix, space }: InfraKeys) {
  const s = space.session
  const u = space.user
  const shards: DeadlineShard[] = Array.from({ length: DEADLINE_SHARDS }, (_, shard) => {
    const d = space.shard(shard)
    const lists = { active: `${d}:due:active`, idle: `${d}:due:idle`, warned: `${d}:due:warned`, warnedEarly: `${d}:due:warned-early`, lifetime: `${d}:due:lifetime` }
    return { shard, ...lists, dirty: `${d}:dirty:activity`, lists: Object.values(lists) }
  })
  return {
    /** token hash → cached session record (cache-aside over PostgreSQL); looked up by the token alone, so untagged */
    sessionByToken: (tokenHash: string) => `${prefix}tok:${tokenHash}`,
    /** hash: lastActivity, view — the hot presence of one session */
    sessionPresence: (sessionId: string) => `${s(sessionId)}:presence`,
    /** sorted set: tabId → when the tab was last heard from (ms) */
    sessionTabs: (sessionId: string) => `${s(sessionId)}:tabs`,
    /** the session's active platform and state version, cached (state-cache.ts) */
    sessionState: (sessionId: string) => `${s(sessionId)}:state`,
    /** the generation of a user's cached session states, and the mark of a write under way */
    userStateGen: (userId: number) => `${u(userId)}:state-gen`,
    userStateWriting: (userId: number) => `${u(userId)}:state-writing`,
    /** set with the session's session_ended_elsewhere notices: they go out once */
    sessionNoticed: (sessionId: string) => `${s(sessionId)}:noticed`,
    /** set with the announcement of one lock release (its audit event id): it goes out once */
    lockReleaseAnnounced: (auditId: number) => `${prefix}lockrel:${auditId}`,
    /** The idle sweep's deadline lists and the dirty set of the shard that holds this session. */
    deadlines: (sessionId: string): DeadlineShard => shards[shardOf(sessionId)]!,
    /** every shard, for the sweep, the reseed, the cleanup and the write-behind to walk */
    deadlineShards: shards,
    /** set (with a TTL the sweep keeps renewing) once the lists hold every active session: gone when Redis lost its data */
    dueSeeded: `${prefix}due:seeded`,
  }
}

export type SessionKeys = ReturnType<typeof sessionKeys>

/** What the sessions feature and the features on it use: infra's keys and the session's. */
export type SessionSlotKeys = InfraKeys & SessionKeys

/** Session ids by the deadline shard that holds them, so that one command per shard does for all. */
export function byShard(keys: Pick<SessionKeys, 'deadlines'>, sessionIds: string[]): Map<DeadlineShard, string[]> {
  const out = new Map<DeadlineShard, string[]>()
  for (const id of sessionIds) {
    const d = keys.deadlines(id)
    const ids = out.get(d)
    if (ids) ids.push(id)
    else out.set(d, [id])
  }
  return out
}
