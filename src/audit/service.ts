// Audit events: who did what to which session, written to PostgreSQL, and read back for
// the admin (the trail, a session's timeline) and the cleanup job (retention).
import type { Db, Queryable } from '../infra/db.js'
import { GroupCommit } from '../infra/group-commit.js'
import { auditEvents } from '../../db/schema.js'
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
    this.grouped = new GroupCommit((entries) => this.recordIn(this.db, ...entries))
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
    await tx.insert(auditEvents).values(
      entries.map((e) => ({
        type: e.type,
        actorUserId: e.actorUserId ?? null,
        userId: e.userId ?? null,
        sessionId: e.sessionId ?? null,
        data: e.data ?? {},
      })),
    )
  }
}
