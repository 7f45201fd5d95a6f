// Audit events: who did what to which session, written to PostgreSQL.
import type { Db, Sql } from '../infra/db.js'
import { auditEvents } from '../../db/schema.js'

export interface AuditEntry {
  type: string
  actorUserId?: number | null
  userId?: number | null
  sessionId?: string | null
  data?: Record<string, unknown>
}

export class Audit {
  constructor(
    private readonly db: Db,
    readonly enabled: boolean,
  ) {}

  async record(...entries: AuditEntry[]): Promise<void> {
    if (!this.enabled || entries.length === 0) return
    await this.db.insert(auditEvents).values(
      entries.map((e) => ({
        type: e.type,
        actorUserId: e.actorUserId ?? null,
        userId: e.userId ?? null,
        sessionId: e.sessionId ?? null,
        data: e.data ?? {},
      })),
    )
  }

  /** The same, on a transaction of the caller's: the events commit with its other writes or not at all. */
  async recordIn(sql: Sql, ...entries: AuditEntry[]): Promise<void> {
    if (!this.enabled) return
    for (const e of entries) {
      await sql`insert into audit_events (type, actor_user_id, user_id, session_id, data)
        values (${e.type}, ${e.actorUserId ?? null}, ${e.userId ?? null}, ${e.sessionId ?? null}, ${JSON.stringify(e.data ?? {})}::jsonb)`
    }
  }
}
