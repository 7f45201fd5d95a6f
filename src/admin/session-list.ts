// The admin's list of live sessions, shared by GET /admin/sessions, the live feed and the
// CLI: the sessions feature narrows by user, role and IP in SQL; status, search and sort
// need the hot presence, so they are applied to the views (session-order.ts, which the
// dashboard shares).
import type { SessionDetails } from '../sessions/detail.js'
import type { Sessions } from '../sessions/service.js'
import type { SessionView } from '../sessions/views.js'
import type { Settings } from '../settings/schemas.js'
import { matchesFilter, type SessionFilter, sortViews } from './session-order.js'

export { matchesFilter, type SessionFilter } from './session-order.js'

/** Every active session under the filter, sorted (default: most recently active first). */
export async function listSessions(
  details: Pick<SessionDetails, 'activeIds'>,
  sessions: Sessions,
  settings: Settings,
  f: SessionFilter,
): Promise<SessionView[]> {
  const views = await sessions.viewsOf(await details.activeIds(f), settings)
  return sortViews(
    views.filter((v) => matchesFilter(v, f)),
    f,
  )
}
