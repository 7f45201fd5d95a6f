// Account administration: list, create, change (role, disable, email, password), unlock.
import { checkPasswordStrength, hashPassword } from '../auth/passwords.js'
import { changeAccountIn, clearLockout, createUser, findUserById, keepAnAdmin, toUserView } from '../auth/users.js'
import type { Redis } from 'ioredis'
import type { Audit } from '../audit/service.js'
import type { EventBus } from '../infra/bus.js'
import type { Database } from '../infra/db.js'
import type { AuthKeys } from '../auth/keys.js'
import type { Sessions } from '../sessions/service.js'
import { userNotFound } from './errors.js'
import { publishSessionState } from '../realtime/session-state.js'
import { type SettingsService, sessionLimitFor } from '../settings/service.js'

export interface UserChange {
  role?: string
  disabled?: boolean
  email?: string | null
  password?: string
}

/** What account administration uses (the Fastify instance has all of it). */
export interface UserAdminDeps {
  database: Database
  audit: Audit
  settings: SettingsService
  sessions: Sessions
  bus: EventBus
  redis: Redis
  authKeys: AuthKeys
}

export class UserAdmin {
  constructor(private readonly d: UserAdminDeps) {}

  async create(input: { username: string; email?: string | null; password: string; role: string }, actorUserId: number) {
    const user = await createUser(this.d.database.db, input)
    await this.d.audit.record({ type: 'user.created', actorUserId, userId: user.id, data: { username: user.username, role: user.role } })
    return toUserView(user)
  }

  async change(userId: number, change: UserChange, actorUserId: number) {
    const { db } = this.d.database
    const before = await findUserById(db, userId)
    if (!before) throw userNotFound()
    const { password, ...columns } = change
    if (password !== undefined) checkPasswordStrength(password, before.username)
    const passwordHash = password === undefined ? undefined : await hashPassword(password)
    const settings = await this.d.settings.get()
    const { sessions } = this.d
    // One transaction under the user's login lock: a login under way either opened its
    // session first (then it is counted, and ended, here) or sees the change when it gets
    // the lock (the new role's limit; a refusal when disabled or the password changed).
    const role = await sessions.whileLoginsWait(userId, async ({ tx, liveSessions, end }) => {
      if ((change.role !== undefined && change.role !== 'admin') || change.disabled === true) await keepAnAdmin(tx, userId)
      const row = await changeAccountIn(tx, userId, { ...columns, passwordHash })
      if (!row) throw userNotFound()
      if (change.disabled === true && !before.disabled) await end(await liveSessions(), 'user_disabled', { actorUserId })
      else if (change.password !== undefined) await end(await liveSessions(), 'password_changed', { actorUserId })
      if (row.role !== before.role) {
        // The new role's limit applies to live sessions at once: the least recently active beyond it end.
        const limit = sessionLimitFor(settings, userId, row.role)
        const note = `The account's role changed to ${row.role}, which allows ${limit} session${limit === 1 ? '' : 's'} at a time`
        const oldestFirst = await liveSessions()
        await end(oldestFirst.slice(0, Math.max(0, oldestFirst.length - limit)), 'session_limit', { actorUserId, note })
      }
      return row.role
    })
    // Cached session records carry the role and the disabled flag: drop them so every node sees the change now.
    await sessions.refreshUser(userId)
    if (role !== before.role) await this.announceRole(userId)
    const after = (await findUserById(db, userId)) ?? before
    await this.d.audit.record({
      type: 'user.changed',
      actorUserId,
      userId,
      data: {
        before: { role: before.role, disabled: before.disabled, email: before.email },
        after: { role: after.role, disabled: after.disabled, email: after.email },
        passwordChanged: change.password !== undefined,
      },
    })
    return toUserView(after)
  }

  /** Every remaining live session hears its new role (session.state), and the admin feeds reload them. */
  private async announceRole(userId: number) {
    const ids = await this.d.sessions.activeIdsOfUser(userId)
    for (const id of ids) await publishSessionState(this.d, id)
    await this.d.bus.publishAdminChange(ids)
  }

  async unlock(userId: number, actorUserId: number) {
    const user = await findUserById(this.d.database.db, userId)
    if (!user) throw userNotFound()
    await clearLockout(this.d.database.db, userId)
    const { redis, authKeys: keys } = this.d
    await redis.unlink(keys.failedLogins(user.username), keys.lockedName(user.username))
    await this.d.audit.record({ type: 'user.unlocked', actorUserId, userId })
  }
}
