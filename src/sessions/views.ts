// A session as others see it: the admin's SessionView row and the session_state body,
// from the sessions row, its hot presence and the settings.
import { eq, inArray } from 'drizzle-orm'
import { platforms, sessions, users } from '../../db/schema.js'
import type { Queryable } from '../infra/db.js'
import type { SessionView } from '../realtime/protocol.js'
import type { Settings } from '../settings/schemas.js'
import type { Presence, SessionRecord } from './records.js'
import type { PlatformState } from './state-cache.js'
import type { Device } from './tokens.js'

/** The wire's session view (GET /admin/sessions, the admin feed), defined once in protocol.ts. */
export type { SessionView }

/** The session_state body from what the service (stateOf) or the one-step read (state-read.ts) found. */
export function stateBody(session: SessionRecord, settings: Settings, s: PlatformState & { lastActivity: number; tabs: number; seq: number }) {
  return {
    user: { id: session.userId, username: session.username, email: session.email, role: session.role },
    platform: s.platform,
    session: {
      id: session.id,
      createdAt: new Date(session.createdAt).toISOString(),
      lastActivity: new Date(s.lastActivity).toISOString(),
      expiresAt: new Date(session.expiresAt).toISOString(),
      idleExpiresAt: new Date(s.lastActivity + settings.idleTimeoutSeconds * 1000).toISOString(),
      status: statusOf(s.lastActivity, settings),
      tabs: s.tabs,
    },
    version: s.version,
    seq: s.seq,
    timestamp: new Date().toISOString(),
  }
}

export function statusOf(lastActivity: number, settings: Settings): 'active' | 'idle' {
  return Date.now() - lastActivity >= settings.idleAfterSeconds * 1000 ? 'idle' : 'active'
}

/** What a SessionView is made of in PostgreSQL: the session, its user and its active platform. */
export interface ViewRow {
  id: string
  userId: number
  username: string
  role: string
  createdAt: Date
  lastActivity: Date
  ip: string | null
  userAgent: string | null
  device: Device | null
  platformId: number | null
  platformName: string | null
}

export async function viewRowsOf(db: Queryable, sessionIds: string[]): Promise<Map<string, ViewRow>> {
  const rows: ViewRow[] = await db
    .select({
      id: sessions.id,
      userId: sessions.userId,
      username: users.username,
      role: users.role,
      createdAt: sessions.createdAt,
      lastActivity: sessions.lastActivity,
      ip: sessions.ip,
      userAgent: sessions.userAgent,
      device: sessions.device,
      platformId: platforms.id,
      platformName: platforms.name,
    })
    .from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .leftJoin(platforms, eq(platforms.id, sessions.activePlatformId))
    .where(inArray(sessions.id, sessionIds))
  return new Map(rows.map((r) => [r.id, r]))
}

export function toView(r: ViewRow, p: Presence | undefined, settings: Settings): SessionView {
  const lastActivity = Math.max(r.lastActivity.getTime(), p?.lastActivity ?? 0)
  return {
    id: r.id,
    userId: r.userId,
    username: r.username,
    role: r.role,
    loginAt: r.createdAt.toISOString(),
    lastActivity: new Date(lastActivity).toISOString(),
    currentView: p?.view ?? null,
    ip: r.ip,
    userAgent: r.userAgent,
    device: r.device ?? { browser: null, os: null, type: 'desktop' },
    status: statusOf(lastActivity, settings),
    tabs: p?.tabs ?? 0,
    platform: r.platformId !== null && r.platformName !== null ? { id: r.platformId, name: r.platformName } : null,
  }
}
