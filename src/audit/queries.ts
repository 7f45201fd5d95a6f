// Reading the audit trail: the admin's filtered list, newest first, and one session's
// timeline in order; and its retention (the cleanup job).
import { and, asc, desc, eq, gte, inArray, lt, lte, or, type SQL, sql } from 'drizzle-orm'
import { auditEvents } from '../../db/schema.js'
import type { Db } from '../infra/db.js'

export interface AuditFilter {
  type?: string
  /** Events about or by this user. */
  userId?: number
  session?: string
  from?: Date
  to?: Date
  /** Only events older than this id (the cursor). */
  before?: number
  limit: number
}

export interface AuditEventRow {
  id: number
  type: string
  actorUserId: number | null
  userId: number | null
  sessionId: string | null
  data: Record<string, unknown>
  at: string
}

export async function listAuditEvents(db: Db, f: AuditFilter): Promise<AuditEventRow[]> {
  const t = auditEvents
  const where: SQL[] = []
  if (f.type) where.push(eq(t.type, f.type))
  if (f.userId !== undefined) where.push(or(eq(t.userId, f.userId), eq(t.actorUserId, f.userId))!)
  if (f.session) where.push(eq(t.sessionId, f.session))
  if (f.from) where.push(gte(t.at, f.from))
  if (f.to) where.push(lte(t.at, f.to))
  if (f.before !== undefined) where.push(lt(t.id, f.before))
  const rows = await db
    .select()
    .from(t)
    .where(and(...where))
    .orderBy(desc(t.id))
    .limit(f.limit)
  return rows.map((r) => ({
    ...r,
    data: r.data ?? {},
    at: r.at.toISOString(),
  }))
}

/** A session's events in order (at most 10,000). */
export async function timelineOf(db: Db, sessionId: string) {
  const t = auditEvents
  const rows = await db.select({ type: t.type, data: t.data, at: t.at }).from(t).where(eq(t.sessionId, sessionId)).orderBy(asc(t.id)).limit(10_000)
  return rows.map((r) => ({
    at: r.at.toISOString(),
    type: r.type,
    data: r.data ?? {},
  }))
}

/** Deletes up to `limit` events older than `days`, oldest first; how many it deleted. */
export async function purgeAuditBatch(db: Db, days: number, limit: number): Promise<number> {
  const t = auditEvents
  const oldest = db
    .select({ id: t.id })
    .from(t)
    .where(lt(t.at, sql`now() - make_interval(days => ${days})`))
    .orderBy(asc(t.id))
    .limit(limit)
  const deleted = await db.delete(t).where(inArray(t.id, oldest)).returning({ id: t.id })
  return deleted.length
}
