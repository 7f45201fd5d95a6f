// Audit events: who did what to which session, written to PostgreSQL, and read back for
// the admin (the trail, a session's timeline) and the cleanup job (retention).
import { sql } from 'drizzle-orm'
import { type Db, executePrepared, type Queryable } from '../infra/db.js'
import { GroupCommit } from '../infra/group-commit.js'
import { type AuditEventRow, type AuditFilter, listAuditEvents, purgeAuditBatch, timelineOf } from './queries.js'

export interface AuditEntry {
  type: string
  actorUserId?: number | null
  userId?: number | null
  sessionId?: string | null
  data?: Record<string, unknown>
}

export class Audit {
  /** Events recorded outside a transaction: concurrent callers share one insert (group commit). */
  private readonly grouped: GroupCommit<AuditEntry>

  constructor(
    private readonly db: Db,
    readonly enabled: boolean,
  ) {
    this.grouped = new GroupCommit((entries) => insertRows(this.db, entries))
  }

  /** Resolves once the events are committed, in the order the calls were made. */
  record(...entries: AuditEntry[]): Promise<void> {
    if (!this.enabled || entries.length === 0) return Promise.resolve()
    return this.grouped.add(entries)
  }

  /** The trail under the filter, newest first. */
  list(f: AuditFilter): Promise<AuditEventRow[]> {
    return listAuditEvents(this.db, f)
  }

  /** A session's events in order (at most 10,000). */
  timeline(sessionId: string) {
    return timelineOf(this.db, sessionId)
  }

  /** Deletes up to `limit` events older than `days`; how many it deleted. */
  purgeBatch(days: number, limit: number): Promise<number> {
    return purgeAuditBatch(this.db, days, limit)
  }

  /** The same, on a transaction of the caller's: the events commit with its other writes or not at all. */
  async recordIn(tx: Queryable, ...entries: AuditEntry[]): Promise<void> {
    if (!this.enabled || entries.length === 0) return
    await insertRows(tx, entries)
  }
}

/**
 * One prepared statement however many rows it carries (one array per column, unnested in
 * order), where drizzle's `values` would make a new statement text, built and described
 * again, for each number of rows.
 */
async function insertRows(db: Queryable, entries: AuditEntry[]): Promise<void> {
  const column = <T>(value: (e: AuditEntry) => T) => sql.param(entries.map(value))
  await executePrepared(
    db,
    sql`insert into audit_events (type, actor_user_id, user_id, session_id, data)
      select * from unnest(${column((e) => e.type)}::text[], ${column((e) => e.actorUserId ?? null)}::int[],
        ${column((e) => e.userId ?? null)}::int[], ${column((e) => e.sessionId ?? null)}::uuid[], ${column((e) => JSON.stringify(e.data ?? {}))}::jsonb[])`,
    'audit_insert_rows',
  )
}
