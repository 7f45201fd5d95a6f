// Reading the sessions table for others: an administrator's view of one session, the ids
// behind the admin list and feed, and what the cleanup job looks for (typed rows from
// drizzle); and the one write another feature makes, on the transaction that opens the
// session: a sign-in's anomaly flags (flagSessionIn).
import { and, asc, eq, gt, inArray, lt, lte, or, type SQL, sql } from 'drizzle-orm'
import { locks, sessions, users } from '../../db/schema.js'
import type { Db, Queryable } from '../infra/db.js'

/** What GET /admin/sessions/:id adds to a session's view. */
export interface SessionRecord {
  status: string
  endedAt: Date | null
  endReason: string | null
  endedBy: number | null
  endNote: string | null
  fingerprint: string | null
  flags: string[]
  expiresAt: Date
}

/** The SQL part of the admin list's filter (the rest needs the hot presence). */
export interface ActiveSessionFilter {
  /** A username (any case) or a user id. */
  user?: string
  role?: string
  ip?: string
}

export interface SessionStatus {
  id: string
  status: string
  endReason: string | null
}

export interface DeadlineRow {
  id: string
  expiresAt: Date
  lastActivity: Date
}

const NO_ID = '00000000-0000-0000-0000-000000000000'

/** Sets the anomaly flags of a session being opened, on the transaction that opens it (OpenOptions.alsoCommit). */
export async function flagSessionIn(tx: Queryable, sessionId: string, flags: string[]): Promise<void> {
  await tx.update(sessions).set({ flags }).where(eq(sessions.id, sessionId))
}

export class SessionDetails {
  constructor(private readonly db: Db) {}

  /** One session, live or ended; null when there is none. */
  async record(id: string): Promise<SessionRecord | null> {
    const [row] = await this.db
      .select({
        status: sessions.status,
        endedAt: sessions.endedAt,
        endReason: sessions.endReason,
        endedBy: sessions.endedBy,
        endNote: sessions.endNote,
        fingerprint: sessions.fingerprint,
        flags: sessions.flags,
        expiresAt: sessions.expiresAt,
      })
      .from(sessions)
      .where(eq(sessions.id, id))
    return row ?? null
  }

  /** The session's status ('active', 'ended'); null when there is no such session. */
  async statusOf(id: string): Promise<string | null> {
    const [row] = await this.db.select({ status: sessions.status }).from(sessions).where(eq(sessions.id, id))
    return row?.status ?? null
  }

  /** Ids of the active sessions under the filter, in no order. */
  async activeIds(f: ActiveSessionFilter): Promise<string[]> {
    const where: SQL[] = [eq(sessions.status, 'active')]
    if (f.user) where.push(or(eq(sql`lower(${users.username})`, f.user.toLowerCase()), eq(sql`${users.id}::text`, f.user))!)
    if (f.role) where.push(eq(users.role, f.role))
    if (f.ip) where.push(eq(sql`host(${sessions.ip})`, f.ip))
    const rows = await this.db
      .select({ id: sessions.id })
      .from(sessions)
      .innerJoin(users, eq(users.id, sessions.userId))
      .where(and(...where))
    return rows.map((r) => r.id)
  }

  /** Status and end reason of those of the ids that name a session. */
  async statuses(ids: string[]): Promise<SessionStatus[]> {
    if (ids.length === 0) return []
    return this.db
      .select({
        id: sessions.id,
        status: sessions.status,
        endReason: sessions.endReason,
      })
      .from(sessions)
      .where(inArray(sessions.id, ids))
  }

  /** Those of the ids that name an active session. */
  async activeAmong(ids: string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set()
    const rows = await this.db
      .select({ id: sessions.id })
      .from(sessions)
      .where(and(inArray(sessions.id, ids), eq(sessions.status, 'active')))
    return new Set(rows.map((r) => r.id))
  }

  /**
   * Active sessions whose lifetime or idle timeout has passed by the database's record (the
   * hot last activity may say otherwise), in id order after `after`.
   */
  async pastDeadline(idleTimeoutSeconds: number, limit: number, after = NO_ID): Promise<DeadlineRow[]> {
    return this.db
      .select({
        id: sessions.id,
        expiresAt: sessions.expiresAt,
        lastActivity: sessions.lastActivity,
      })
      .from(sessions)
      .where(
        and(
          eq(sessions.status, 'active'),
          gt(sessions.id, after),
          or(lte(sessions.expiresAt, sql`now()`), lte(sessions.lastActivity, sql`now() - make_interval(secs => ${idleTimeoutSeconds})`)),
        ),
      )
      .orderBy(asc(sessions.id))
      .limit(limit)
  }

  /** Sessions that ended over a minute ago and still hold locks, in id order after `after`. */
  async endedHoldingLocks(limit: number, after = NO_ID): Promise<{ sessionId: string; endReason: string | null }[]> {
    return this.db
      .selectDistinct({
        sessionId: locks.sessionId,
        endReason: sessions.endReason,
      })
      .from(locks)
      .innerJoin(sessions, eq(sessions.id, locks.sessionId))
      .where(and(eq(sessions.status, 'ended'), lt(sessions.endedAt, sql`now() - interval '1 minute'`), gt(locks.sessionId, after)))
      .orderBy(asc(locks.sessionId))
      .limit(limit)
  }
}
