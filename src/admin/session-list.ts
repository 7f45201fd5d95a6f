// The admin's list of live sessions, shared by GET /admin/sessions, the live feed and the
// CLI: SQL narrows by user, role and IP; status, search and sort need the hot presence, so
// they are applied to the views. `matchesFilter` is the same test on one view, for the feed.
import type { Pool } from '../infra/db.js'
import type { SessionView, Sessions } from '../sessions/service.js'
import type { Settings } from '../settings/schemas.js'

export interface SessionFilter {
  status?: 'active' | 'idle'
  user?: string
  role?: string
  ip?: string
  q?: string
  sort?: string
  order?: 'asc' | 'desc'
}

export const SORT_COLUMNS = [
  'id',
  'userId',
  'username',
  'role',
  'loginAt',
  'lastActivity',
  'currentView',
  'ip',
  'userAgent',
  'device',
  'status',
  'tabs',
  'platform',
] as const

function sortKey(v: SessionView, column: string): string | number {
  switch (column) {
    case 'userId':
    case 'tabs':
      return v[column]
    case 'device':
      return `${v.device.browser ?? ''} ${v.device.os ?? ''} ${v.device.type}`.toLowerCase()
    case 'platform':
      return v.platform?.name.toLowerCase() ?? ''
    default:
      return String(v[column as keyof SessionView] ?? '').toLowerCase()
  }
}

/** `user` names a user by username (any case) or by numeric id, like the history and audit filters. */
const isUser = (v: SessionView, user: string) => v.username.toLowerCase() === user.toLowerCase() || String(v.userId) === user

/** Whether one live session's view is under the filter (the feed decides its rows with this). */
export function matchesFilter(v: SessionView, f: SessionFilter): boolean {
  if (f.user !== undefined && !isUser(v, f.user)) return false
  if (f.role !== undefined && v.role !== f.role) return false
  if (f.ip !== undefined && v.ip !== f.ip) return false
  if (f.status !== undefined && v.status !== f.status) return false
  const q = f.q?.toLowerCase()
  return !q || [v.username, v.ip, v.currentView, v.device.browser].some((s) => s?.toLowerCase().includes(q))
}

/** Sorts views in place by a SessionView column; ties by id, so pages never overlap. */
function sortViews(views: SessionView[], f: Pick<SessionFilter, 'sort' | 'order'>): SessionView[] {
  const column = f.sort ?? 'lastActivity'
  const direction = (f.order ?? (f.sort ? 'asc' : 'desc')) === 'asc' ? 1 : -1
  return views.sort((a, b) => {
    const x = sortKey(a, column)
    const y = sortKey(b, column)
    return (x < y ? -1 : x > y ? 1 : a.id < b.id ? -1 : 1) * direction
  })
}

/** Every active session under the filter, sorted (default: most recently active first). */
export async function listSessions(sql: Pool, sessions: Sessions, settings: Settings, f: SessionFilter): Promise<SessionView[]> {
  const rows = await sql`
    select s.id from sessions s join users u on u.id = s.user_id
    where s.status = 'active'
      ${f.user ? sql`and (lower(u.username) = ${f.user.toLowerCase()} or u.id::text = ${f.user})` : sql``}
      ${f.role ? sql`and u.role = ${f.role}` : sql``}
      ${f.ip ? sql`and host(s.ip) = ${f.ip}` : sql``}`
  const views = await sessions.viewsOf(
    rows.map((r) => r.id as string),
    settings,
  )
  return sortViews(
    views.filter((v) => matchesFilter(v, f)),
    f,
  )
}
