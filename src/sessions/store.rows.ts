// The rows the sessions store reads (store.ts): which columns, their types, and the
// records made of them. Typed by drizzle's schema, or given to execute() where a statement
// is a CTE (markEnded); nothing is cast.
import { sessions, users } from '../../db/schema.js'
import { endReasonOf } from './errors.js'
import type { EndedSession, SessionRecord } from './records.js'
import type { Device } from './tokens.js'

/** What a SessionRecord is read from: the session joined with its user. */
export const recordColumns = {
  id: sessions.id,
  userId: sessions.userId,
  username: users.username,
  email: users.email,
  role: users.role,
  userDisabled: users.disabled,
  status: sessions.status,
  endReason: sessions.endReason,
  endNote: sessions.endNote,
  createdAt: sessions.createdAt,
  expiresAt: sessions.expiresAt,
  endedAt: sessions.endedAt,
  lastActivity: sessions.lastActivity,
  fingerprint: sessions.fingerprint,
}

type RecordRow = {
  id: string
  userId: number
  username: string
  email: string | null
  role: string
  userDisabled: boolean
  status: 'active' | 'ended'
  endReason: string | null
  endNote: string | null
  createdAt: Date
  expiresAt: Date
  endedAt: Date | null
  lastActivity: Date
  fingerprint: string | null
}

export function toRecord(row: RecordRow): SessionRecord {
  return {
    id: row.id,
    userId: row.userId,
    username: row.username,
    email: row.email,
    role: row.role,
    userDisabled: row.userDisabled,
    status: row.status,
    endReason: endReasonOf(row.endReason),
    endNote: row.endNote,
    createdAt: row.createdAt.getTime(),
    expiresAt: row.expiresAt.getTime(),
    endedAt: row.endedAt?.getTime() ?? null,
    lastActivity: row.lastActivity.getTime(),
    fingerprint: row.fingerprint?.trim() ?? null,
  }
}

/** What an EndedSession is read from: its record's columns and the ending's. */
export const endedColumns = {
  ...recordColumns,
  tokenHash: sessions.tokenHash,
  endedBy: sessions.endedBy,
  endTabId: sessions.endTabId,
  ip: sessions.ip,
  device: sessions.device,
  finalizedAt: sessions.finalizedAt,
}

type EndedRow = RecordRow & {
  tokenHash: string
  endedBy: number | null
  endTabId: string | null
  ip: string | null
  device: Device | null
  finalizedAt: Date | null
}

/** markEnded's rows: an ending, with the release of its locks (its `locks.released` event) when it held any. */
export type EndingRow = EndedRow & {
  /** A bigint: text from the driver. */
  lockReleaseId: string | null
  lockReleaseResources: string[] | null
}

export function toEnded(row: EndedRow, lockRelease: EndedSession['lockRelease'] = null): EndedSession {
  const record = toRecord(row)
  return {
    id: record.id,
    userId: record.userId,
    tokenHash: row.tokenHash.trim(),
    reason: record.endReason ?? 'logout',
    record,
    actorUserId: row.endedBy,
    note: row.endNote,
    byTabId: row.endTabId,
    ip: row.ip,
    device: row.device,
    finalizedAt: row.finalizedAt?.getTime() ?? null,
    lockRelease,
  }
}
