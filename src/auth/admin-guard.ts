// The admin guard: a live session whose user is an admin now, as PostgreSQL says.
import type { FastifyRequest } from 'fastify'
import type { AppContext } from '../context.js'
import { bestEffort } from '../infra/errors.js'
import { forbidden } from '../sessions/errors.js'
import { authOf, requireSession } from '../sessions/guards.js'
import { findUserById } from './users.js'

/**
 * onRequest: a live session of an admin. The role is read from PostgreSQL, not from the
 * token cache: a role change cut short after its commit (Redis failing, the process gone)
 * could leave a cached record saying `admin` for the rest of the session. A stale cached
 * record is refreshed on the way.
 */
export function requireAdmin(ctx: AppContext) {
  const session = requireSession(ctx)
  return async (req: FastifyRequest) => {
    await session(req)
    const { session: s } = authOf(req)
    const user = await findUserById(ctx.database.db, s.userId)
    if (user && user.role !== s.role) await bestEffort(req.log, 'refreshing a stale cached role', () => ctx.sessions.refreshUser(s.userId))
    if (user?.role !== 'admin' || user.disabled) throw forbidden()
  }
}
