// Audit events: who did what to which session, written to PostgreSQL.
import type { Db } from '../infra/db.js'
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
}
