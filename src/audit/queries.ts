// Reading the audit trail: the admin's filtered list, newest first, and one session's
// timeline in order.
import type { Pool } from '../infra/db.js'

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

export async function listAuditEvents(sql: Pool, f: AuditFilter) {
  const rows = await sql`
        select id, type, actor_user_id, user_id, session_id, data, at from audit_events
        where true
          ${f.type ? sql`and type = ${f.type}` : sql``}
          ${f.userId !== undefined ? sql`and (user_id = ${f.userId} or actor_user_id = ${f.userId})` : sql``}
          ${f.session ? sql`and session_id = ${f.session}` : sql``}
          ${f.from ? sql`and at >= ${f.from}` : sql``}
          ${f.to ? sql`and at <= ${f.to}` : sql``}
          ${f.before !== undefined ? sql`and id < ${f.before}` : sql``}
        order by id desc limit ${f.limit}`
  return rows.map(toAuditEvent)
}

/** A session's events in order (at most 10,000). */
export async function timelineOf(sql: Pool, sessionId: string) {
  const rows = await sql`select type, data, at from audit_events where session_id = ${sessionId} order by id limit 10000`
  return rows.map((r) => ({ at: (r.at as Date).toISOString(), type: r.type as string, data: (r.data as Record<string, unknown>) ?? {} }))
}

function toAuditEvent(r: Record<string, unknown>) {
  return {
    id: Number(r.id),
    type: r.type as string,
    actorUserId: (r.actor_user_id as number | null) ?? null,
    userId: (r.user_id as number | null) ?? null,
    sessionId: (r.session_id as string | null) ?? null,
    data: (r.data as Record<string, unknown>) ?? {},
    at: (r.at as Date).toISOString(),
  }
}
