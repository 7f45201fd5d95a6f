// A session as others see it: the admin's SessionView row and the session_state body,
// from the sessions row, its hot presence and the settings.
import type { Sql } from '../infra/db.js'
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

export async function viewRowsOf(sql: Sql, sessionIds: string[]): Promise<Map<string, Record<string, unknown>>> {
  const rows = await sql`
    select s.id, s.user_id, u.username, u.role, s.created_at, s.last_activity, s.ip, s.user_agent, s.device,
           p.id as platform_id, p.name as platform_name
    from sessions s join users u on u.id = s.user_id left join platforms p on p.id = s.active_platform_id
    where s.id = any(${sessionIds}::uuid[])`
  return new Map(rows.map((r) => [r.id as string, r]))
}

export function toView(r: Record<string, unknown>, p: Presence | undefined, settings: Settings): SessionView {
  const lastActivity = Math.max((r.last_activity as Date).getTime(), p?.lastActivity ?? 0)
  return {
    id: r.id as string,
    userId: r.user_id as number,
    username: r.username as string,
    role: r.role as string,
    loginAt: (r.created_at as Date).toISOString(),
    lastActivity: new Date(lastActivity).toISOString(),
    currentView: p?.view ?? null,
    ip: (r.ip as string | null) ?? null,
    userAgent: (r.user_agent as string | null) ?? null,
    device: (r.device as Device | null) ?? { browser: null, os: null, type: 'desktop' },
    status: statusOf(lastActivity, settings),
    tabs: p?.tabs ?? 0,
    platform: r.platform_id ? { id: r.platform_id as number, name: r.platform_name as string } : null,
  }
}
