// Locks on named resources (docs/api.md, "Locks"): one owner session per resource, taken
// atomically, released by the owner or, when its session ends, by the ending itself
// (SessionStore.markEnded), with the session-ended job releasing whatever that missed.
import type { Audit } from '../audit/service.js'
import type { Pool, Sql } from '../infra/db.js'
import type { RedisKeys } from '../infra/keys.js'
import { serviceUnavailable } from '../infra/errors.js'
import type { EventBus } from '../infra/bus.js'
import { SERVER_MESSAGES } from '../realtime/protocol.js'
import { type EndReason, sessionEnded } from '../sessions/errors.js'
import { type LockOwner, lockHeld, lockNotFound, notLockOwner } from './errors.js'

export type { LockOwner } from './errors.js'

export interface Lock {
  resource: string
  owner: LockOwner
  acquiredAt: string
}

/** What Locks needs from the rest of the app. */
export interface LocksDeps {
  sql: Pool
  bus: Pick<EventBus, 'publishBroadcast' | 'publishOnce'>
  keys: Pick<RedisKeys, 'lockReleaseAnnounced'>
  audit: Pick<Audit, 'record'>
}

/** One release of a session's locks, as its `locks.released` audit event records it. */
export interface LockRelease {
  /** The audit event's id: the release's identity, so that it is announced once. */
  id: number
  sessionId: string
  resources: string[]
  reason: string
}

/** How long an announced release is remembered (longer than any retry of the job that made it). */
const ANNOUNCED_SECONDS = 86_400

/** The most locks one list answer holds. */
export const LIST_LIMIT = 500

// A lock whose session ended (or outlived its lifetime) no longer holds: the job that
// deletes it may not have run yet, so every reader applies this rule itself.
const ownerLive = (sql: Sql) => sql`s.status = 'active' and s.expires_at > now()`

const escapeLike = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`)

function toLock(r: Record<string, unknown>): Lock {
  return {
    resource: r.resource as string,
    owner: { sessionId: r.session_id as string, userId: r.user_id as number, username: r.username as string },
    acquiredAt: (r.acquired_at as Date).toISOString(),
  }
}

export class Locks {
  constructor(private readonly d: LocksDeps) {}

  /**
   * Takes `resource` for the owner's session. `created` is false when the session already
   * held it (nothing changes then). Throws LOCK_HELD when another live session holds it.
   */
  async acquire(owner: LockOwner, resource: string): Promise<{ lock: Lock; created: boolean }> {
    const { sql } = this.d
    // Each retry needs another session to have released or ended in between; a few suffice.
    for (let attempt = 0; attempt < 5; attempt++) {
      // One statement: the row lock of ON CONFLICT makes concurrent takers queue, and the
      // WHERE (re-checked on the newest row) lets exactly one of them replace a dead owner.
      // It asks for a *known* ended owner: a session too new for this statement's snapshot
      // is not visible here, and must count as live.
      // It inserts only while the taker's own session is live, holding its row (FOR SHARE)
      // until the lock is in: an ending waits for that, so its session-ended job, which
      // comes after it, finds the lock and releases it; an ending that came first is seen.
      const [taken] = await sql`
        with taker as (
          select s.id from sessions s where s.id = ${owner.sessionId} and ${ownerLive(sql)} for share
        ), won as (
          insert into locks (resource, session_id, user_id) select ${resource}, id, ${owner.userId} from taker
          on conflict (resource) do update set session_id = excluded.session_id, user_id = excluded.user_id, acquired_at = now()
            where exists (select 1 from sessions s where s.id = locks.session_id and not (${ownerLive(sql)}))
          returning acquired_at
        )
        select (select acquired_at from won) as acquired_at, exists (select 1 from taker) as taker_live`
      if (!taken!.taker_live) throw await this.endedRefusal(owner.sessionId)
      if (taken!.acquired_at) {
        const lock: Lock = { resource, owner, acquiredAt: (taken!.acquired_at as Date).toISOString() }
        await this.d.bus.publishBroadcast({ type: SERVER_MESSAGES.lockAcquired, resource, owner })
        await this.d.audit.record({ type: 'lock.acquired', userId: owner.userId, sessionId: owner.sessionId, data: { resource } })
        return { lock, created: true }
      }
      const current = await this.find(resource)
      if (current?.owner.sessionId === owner.sessionId) return { lock: current, created: false }
      if (current?.live) throw lockHeld(current.owner)
      // Released, or its owner ended, between the two statements: try again.
    }
    throw serviceUnavailable('This lock')
  }

  /** Releases the caller's own lock and tells every tab. */
  async release(owner: Pick<LockOwner, 'sessionId' | 'userId'>, resource: string): Promise<void> {
    const [deleted] = await this.d.sql`delete from locks where resource = ${resource} and session_id = ${owner.sessionId} returning resource`
    if (!deleted) {
      const current = await this.find(resource)
      // A lock of an ended session is already free, as far as anyone can see.
      if (!current?.live) throw lockNotFound()
      throw notLockOwner()
    }
    await this.announceReleased(owner.sessionId, [resource], 'released')
    await this.d.audit.record({ type: 'lock.released', userId: owner.userId, sessionId: owner.sessionId, data: { resource } })
  }

  /**
   * Live locks, optionally those whose name starts with `prefix` (taken literally), in
   * code-point order of resource whatever the database collation.
   */
  async list(prefix?: string): Promise<Lock[]> {
    const { sql } = this.d
    const rows = await sql`
      select l.resource, l.session_id, l.user_id, u.username, l.acquired_at
      from locks l join sessions s on s.id = l.session_id join users u on u.id = l.user_id
      where ${ownerLive(sql)} ${prefix ? sql`and l.resource like ${`${escapeLike(prefix)}%`} escape '\\'` : sql``}
      order by l.resource collate "C"
      limit ${LIST_LIMIT}`
    return rows.map(toLock)
  }

  /**
   * Deletes every lock of a session and, in the same transaction, records which ones in a
   * `locks.released` audit event. Returns that release, or null when the session held none
   * (a second call finds none): whoever deleted a lock is the only one who reports it.
   */
  async releaseAllOf(sessionId: string, reason: string): Promise<LockRelease | null> {
    return this.d.sql.begin(async (tx) => {
      const rows = await tx`delete from locks where session_id = ${sessionId} returning resource, user_id`
      if (rows.length === 0) return null
      const resources = rows.map((r) => r.resource as string).sort()
      // Written here and not through Audit: it must commit or vanish with the delete.
      const [event] = await tx`insert into audit_events (type, user_id, session_id, data)
        values ('locks.released', ${rows[0]!.user_id as number}, ${sessionId}, ${JSON.stringify({ resources, reason })}::jsonb)
        returning id`
      return { id: Number(event!.id), sessionId, resources, reason }
    })
  }

  /** Every recorded release of the session's locks (for a retried job to announce what an earlier attempt did not). */
  async releasesOf(sessionId: string): Promise<LockRelease[]> {
    const rows = await this.d.sql`select id, data from audit_events
      where session_id = ${sessionId} and type = 'locks.released' order by id`
    return rows.flatMap((row) => {
      const data = (typeof row.data === 'string' ? JSON.parse(row.data) : row.data) as { resources?: unknown; reason?: unknown }
      if (!Array.isArray(data.resources)) return []
      return [{ id: Number(row.id), sessionId, resources: data.resources as string[], reason: String(data.reason ?? 'ended') }]
    })
  }

  /**
   * Tells every connected tab that these locks are free: once per release, however often
   * it is asked (a retried job, the cleanup overlapping it). Returns whether this call told them.
   */
  async announceRelease(release: LockRelease): Promise<boolean> {
    return this.d.bus.publishOnce(this.d.keys.lockReleaseAnnounced(release.id), ANNOUNCED_SECONDS, 'broadcast', {
      type: SERVER_MESSAGES.locksReleased,
      resources: release.resources,
      sessionId: release.sessionId,
      reason: release.reason,
    })
  }

  /** Tells every connected tab that these locks of the session are free (nothing when there are none). */
  async announceReleased(sessionId: string, resources: string[], reason: string): Promise<void> {
    if (resources.length === 0) return
    await this.d.bus.publishBroadcast({ type: SERVER_MESSAGES.locksReleased, resources, sessionId, reason })
  }

  /** The refusal for a taker whose session has ended (or outlived its lifetime, not yet swept). */
  private async endedRefusal(sessionId: string) {
    const [row] = await this.d.sql`select status, end_reason from sessions where id = ${sessionId}`
    return row?.status === 'ended' ? sessionEnded((row.end_reason as EndReason | null) ?? 'logout') : sessionEnded('lifetime')
  }

  private async find(resource: string): Promise<(Lock & { live: boolean }) | null> {
    const { sql } = this.d
    const [row] = await sql`
      select l.resource, l.session_id, l.user_id, u.username, l.acquired_at, (${ownerLive(sql)}) as live
      from locks l join sessions s on s.id = l.session_id join users u on u.id = l.user_id
      where l.resource = ${resource}`
    return row ? { ...toLock(row), live: row.live as boolean } : null
  }
}
