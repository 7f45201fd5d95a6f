// The shapes of a session as the other features see it: the cached record, an ending with
// what its announcements need, what recording activity found, and its hot presence.
import type { EndReason } from './errors.js'
import type { Device } from './tokens.js'

export interface SessionRecord {
  id: string
  userId: number
  username: string
  email: string | null
  role: string
  userDisabled: boolean
  status: 'active' | 'ended'
  endReason: EndReason | null
  /** What the user is told of why it ended (an administrator's reason), if anything. */
  endNote: string | null
  createdAt: number
  expiresAt: number
  endedAt: number | null
  /** PostgreSQL's copy of the last activity at the time the record was loaded. */
  lastActivity: number
  fingerprint: string | null
}

/** A record as the token cache holds it: only the sessions store writes it there (JSON of a SessionRecord). */
export function parseRecord(json: string): SessionRecord {
  return JSON.parse(json)
}

/** A session that has just ended (or, for the session-ended job, that ended before), with what its announcements need. */
export interface EndedSession {
  id: string
  userId: number
  tokenHash: string
  reason: EndReason
  /** Its record as the token cache should now hold it (status ended). */
  record: SessionRecord
  actorUserId: number | null
  note: string | null
  /** The tab that logged out, for session.logged_out. */
  byTabId: string | null
  ip: string | null
  device: Device | null
  /** When the session-ended job finished its follow-up (null until then). */
  finalizedAt: number | null
  /**
   * The locks the ending released (markEnded): its `locks.released` audit event's id and the
   * resources; null when it held none, or when this was read back later (findEnded).
   */
  lockRelease: { id: number; resources: string[] } | null
}

/** What recording activity found. */
export interface ActivityOutcome {
  /** Last activity before this call. */
  last: number
  /** The session had been flagged idle or warned: tabs hear it is active again. */
  wasIdle: boolean
  /** `idle_over`: the idle deadline had passed, nothing was written (the caller ends it); `ended`: the session has ended, nothing was written. */
  outcome: 'recorded' | 'idle_over' | 'ended'
  /** Redis held the last activity; when not, `last` is the caller's fallback (PostgreSQL's copy). */
  known: boolean
}

export interface Presence {
  lastActivity: number | null
  tabs: number
  view: string | null
}

/** Where a request came from, as sign-in and the fingerprint see it. */
export interface RequestInfo {
  ip: string | null
  userAgent: string | undefined
  acceptLanguage: string | undefined
}
