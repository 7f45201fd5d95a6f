// Locks on named resources (docs/api.md, "Locks"): one owner session per resource, taken
// atomically, released by the owner or, when its session ends, by the ending itself
// (SessionStore.markEnded), with the session-ended job releasing whatever that missed.
import { and, asc, eq, sql } from 'drizzle-orm'
import { auditEvents, locks, sessions, users } from '../../db/schema.js'
import type { Audit } from '../audit/service.js'
import { type Db, executePrepared } from '../infra/db.js'
import type { SessionSlotKeys } from '../sessions/keys.js'
import { serviceUnavailable } from '../infra/errors.js'
import type { EventBus } from '../infra/bus.js'
import { SERVER_MESSAGES } from '../realtime/protocol.js'
import { endReasonOf, sessionEnded } from '../sessions/errors.js'
import { type LockOwner, lockHeld, lockNotFound, notLockOwner } from './errors.js'

export type { LockOwner } from './errors.js'

export interface Lock {
  resource: string
  owner: LockOwner
  acquiredAt: string
}

/** What Locks needs from the rest of the app. */
export interface LocksDeps {
  db: Db
  bus: Pick<EventBus, 'publishBroadcast' | 'publishOnce'>
  keys: Pick<SessionSlotKeys, 'lockReleaseAnnounced'>
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
// (Of `sessions` unaliased: every statement below reads the owner's row under that name.)
const ownerLive = sql`(${sessions.status} = 'active' and ${sessions.expiresAt} > now())`

const escapeLike = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`)

/** What a Lock is read from: the lock and its owner's name. */
const lockColumns = { resource: locks.resource, sessionId: locks.sessionId, userId: locks.userId, username: users.username, acquiredAt: locks.acquiredAt }

function toLock(r: { resource: string; sessionId: string; userId: number; username: string; acquiredAt: Date }): Lock {
  return {
    resource: r.resource,
    owner: { sessionId: r.sessionId, userId: r.userId, username: r.username },
    acquiredAt: r.acquiredAt.toISOString(),
  }
}

export class Locks {
  constructor(private readonly d: LocksDeps) {}

  /**
   * Takes `resource` for the owner's session. `created` is false when the session already
   * held it (nothing changes then). Throws LOCK_HELD when another live session holds it.
   */
  async acquire(owner: LockOwner, resource: string): Promise<{ lock: Lock; created: boolean }> {
    // Each retry needs another session to have released or ended in between; a few suffice.
    for (let attempt = 0; attempt < 5; attempt++) {
      // One statement: the row lock of ON CONFLICT makes concurrent takers queue, and the
      // WHERE (re-checked on the newest row) lets exactly one of them replace a dead owner.
      // It asks for a *known* ended owner: a session too new for this statement's snapshot
      // is not visible here, and must count as live.
      // It inserts only while the taker's own session is live, holding its row (FOR SHARE)
      // until the lock is in: an ending waits for that, so its session-ended job, which
      // comes after it, finds the lock and releases it; an ending that came first is seen.
      const [taken] = await executePrepared<{ acquiredAt: Date | null; takerLive: boolean }>(
        this.d.db,
        sql`
        with taker as (
          select sessions.id from sessions where sessions.id = ${owner.sessionId} and ${ownerLive} for share
        ), won as (
          insert into locks (resource, session_id, user_id) select ${resource}, id, ${owner.userId} from taker
          on conflict (resource) do update set session_id = excluded.session_id, user_id = excluded.user_id, acquired_at = now()
            where exists (select 1 from sessions where sessions.id = locks.session_id and not (${ownerLive}))
          returning acquired_at
        )
        select (select acquired_at from won) as "acquiredAt", exists (select 1 from taker) as "takerLive"`,
        'lock_take',
      )
      if (!taken!.takerLive) throw await this.endedRefusal(owner.sessionId)
      if (taken!.acquiredAt) {
        const lock: Lock = { resource, owner, acquiredAt: taken!.acquiredAt.toISOString() }
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
    const [deleted] = await this.d.db
      .delete(locks)
      .where(and(eq(locks.resource, resource), eq(locks.sessionId, owner.sessionId)))
      .returning({ resource: locks.resource })
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
    const rows = await this.d.db
      .select(lockColumns)
      .from(locks)
      .innerJoin(sessions, eq(sessions.id, locks.sessionId))
      .innerJoin(users, eq(users.id, locks.userId))
      .where(and(ownerLive, prefix ? sql`${locks.resource} like ${`${escapeLike(prefix)}%`} escape '\\'` : undefined))
      .orderBy(sql`${locks.resource} collate "C"`)
      .limit(LIST_LIMIT)
    return rows.map(toLock)
  }

  /**
   * Deletes every lock of a session and, in the same transaction, records which ones in a
   * `locks.released` audit event. Returns that release, or null when the session held none
   * (a second call finds none): whoever deleted a lock is the only one who reports it.
   */
  async releaseAllOf(sessionId: string, reason: string): Promise<LockRelease | null> {
    return this.d.db.transaction(async (tx) => {
      const rows = await tx.delete(locks).where(eq(locks.sessionId, sessionId)).returning({ resource: locks.resource, userId: locks.userId })
      if (rows.length === 0) return null
      const resources = rows.map((r) => r.resource).sort()
      // Written here and not through Audit: it must commit or vanish with the delete.
      const [event] = await tx
        .insert(auditEvents)
        .values({ type: 'locks.released', userId: rows[0]!.userId, sessionId, data: { resources, reason } })
        .returning({ id: auditEvents.id })
      return { id: event!.id, sessionId, resources, reason }
    })
  }

  /** Every recorded release of the session's locks (for a retried job to announce what an earlier attempt did not). */
  async releasesOf(sessionId: string): Promise<LockRelease[]> {
    const rows = await this.d.db
      .select({ id: auditEvents.id, data: auditEvents.data })
      .from(auditEvents)
      .where(and(eq(auditEvents.sessionId, sessionId), eq(auditEvents.type, 'locks.released')))
      .orderBy(asc(auditEvents.id))
    return rows.flatMap(({ id, data }) => {
      if (!Array.isArray(data.resources)) return []
      return [{ id, sessionId, resources: data.resources.map(String), reason: String(data.reason ?? 'ended') }]
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
    const [row] = await this.d.db.select({ status: sessions.status, endReason: sessions.endReason, endNote: sessions.endNote }).from(sessions).where(eq(sessions.id, sessionId))
    return row?.status === 'ended' ? sessionEnded(endReasonOf(row.endReason) ?? 'logout', row.endNote) : sessionEnded('lifetime')
  }

  private async find(resource: string): Promise<(Lock & { live: boolean }) | null> {
    const [row] = await this.d.db
      .select({ ...lockColumns, live: sql<boolean>`${ownerLive}` })
      .from(locks)
      .innerJoin(sessions, eq(sessions.id, locks.sessionId))
      .innerJoin(users, eq(users.id, locks.userId))
      .where(eq(locks.resource, resource))
    return row ? { ...toLock(row), live: row.live } : null
  }
}
