// The admin guard: a live session whose user is an admin now, as PostgreSQL says.
import type { FastifyRequest } from 'fastify'
import type { Database } from '../infra/db.js'
import { bestEffort } from '../infra/errors.js'
import { forbidden } from '../sessions/errors.js'
import { authOf, requireSession, type SessionGuardDeps } from '../sessions/guards.js'
import type { Sessions } from '../sessions/service.js'
import { findUserById } from './users.js'

/**
 * onRequest: a live session of an admin. The role is read from PostgreSQL, not from the
 * token cache: a role change cut short after its commit (Redis failing, the process gone)
 * could leave a cached record saying `admin` for the rest of the session. A stale cached
 * record is refreshed on the way.
 */
export interface AdminGuardDeps extends SessionGuardDeps {
  sessions: Pick<Sessions, 'authenticate' | 'recordByToken' | 'refreshUser'>
  database: Pick<Database, 'db'>
}

export function requireAdmin(d: AdminGuardDeps) {
  const session = requireSession(d)
  return async (req: FastifyRequest) => {
    await session(req)
    const { session: s } = authOf(req)
    const user = await findUserById(d.database.db, s.userId)
    if (user && user.role !== s.role) await bestEffort(req.log, 'refreshing a stale cached role', () => d.sessions.refreshUser(s.userId))
    if (user?.role !== 'admin' || user.disabled) throw forbidden()
  }
}
