// The admin's list of live sessions, shared by GET /admin/sessions, the live feed and the
// CLI: SQL narrows by user, role and IP; status, search and sort need the hot presence, so
// they are applied to the views (session-order.ts, which the dashboard shares).
import type { Pool } from '../infra/db.js'
import type { Sessions } from '../sessions/service.js'
import type { SessionView } from '../sessions/views.js'
import type { Settings } from '../settings/schemas.js'
import { matchesFilter, type SessionFilter, sortViews } from './session-order.js'

export { matchesFilter, type SessionFilter } from './session-order.js'

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
