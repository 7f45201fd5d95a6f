// Account administration: list, create, change (role, disable, email, password), unlock.
import { and, eq, ne, sql as dsql } from 'drizzle-orm'
import { users } from '../../db/schema.js'
import { checkPasswordStrength, hashPassword } from '../auth/passwords.js'
import { createUser, findUserById, toUserView, type UserRow } from '../auth/users.js'
import type { AppContext } from '../context.js'
import { AppError } from '../infra/errors.js'
import { publishSessionState } from '../realtime/session-state.js'
import { sessionLimitFor } from '../settings/service.js'

const LAST_ADMIN_LOCK = 7_311_999_002

export const userNotFound = () => new AppError(404, 'USER_NOT_FOUND', 'No such user.')

export interface UserChange {
  role?: string
  disabled?: boolean
  email?: string | null
  password?: string
}

export class UserAdmin {
  constructor(private readonly ctx: AppContext) {}

  async create(input: { username: string; email?: string | null; password: string; role: string }, actorUserId: number) {
    const user = await createUser(this.ctx.database.db, input)
    await this.ctx.audit.record({ type: 'user.created', actorUserId, userId: user.id, data: { username: user.username, role: user.role } })
    return toUserView(user)
  }

  async change(userId: number, change: UserChange, actorUserId: number) {
    const { db } = this.ctx.database
    const before = await findUserById(db, userId)
    if (!before) throw userNotFound()
    const set: Partial<UserRow> = { updatedAt: new Date() }
    if (change.role !== undefined) set.role = change.role
    if (change.disabled !== undefined) set.disabled = change.disabled
    if (change.email !== undefined) set.email = change.email
    if (change.password !== undefined) {
      checkPasswordStrength(change.password, before.username)
      set.passwordHash = await hashPassword(change.password)
    }
    const [after] = await db.transaction(async (tx) => {
      if ((change.role !== undefined && change.role !== 'admin') || change.disabled === true) {
        // Two admins removing each other at once must not both count the other as the one
        // that remains: such changes take turns, and each reads the state the last one left.
        await tx.execute(dsql`select pg_advisory_xact_lock(${LAST_ADMIN_LOCK})`)
        const [current] = await tx.select({ role: users.role, disabled: users.disabled }).from(users).where(eq(users.id, userId))
        if (current?.role === 'admin' && !current.disabled) {
          const [row] = await tx
            .select({ n: dsql<number>`count(*)::int` })
            .from(users)
            .where(and(eq(users.role, 'admin'), eq(users.disabled, false), ne(users.id, userId)))
          if ((row?.n ?? 0) === 0) throw new AppError(409, 'LAST_ADMIN', 'This is the last enabled admin; make another admin first.')
        }
      }
      return tx.update(users).set(set).where(eq(users.id, userId)).returning()
    })
    const { sessions } = this.ctx
    if (change.disabled === true && !before.disabled) {
      await sessions.end(await sessions.activeIdsOfUser(userId), 'user_disabled', { actorUserId })
    } else if (change.password !== undefined) {
      await sessions.end(await sessions.activeIdsOfUser(userId), 'password_changed', { actorUserId })
    }
    const roleChanged = after!.role !== before.role
    if (roleChanged) await this.endSessionsOverLimit(userId, after!.role, actorUserId)
    // Cached session records carry the role and the disabled flag: drop them so every node sees the change now.
    await sessions.refreshUser(userId)
    if (roleChanged) await this.announceRole(userId)
    await this.ctx.audit.record({
      type: 'user.changed',
      actorUserId,
      userId,
      data: {
        before: { role: before.role, disabled: before.disabled, email: before.email },
        after: { role: after!.role, disabled: after!.disabled, email: after!.email },
        passwordChanged: change.password !== undefined,
      },
    })
    return toUserView(after!)
  }

  /** The new role's limit applies to live sessions at once: the least recently active beyond it end. */
  private async endSessionsOverLimit(userId: number, role: string, actorUserId: number) {
    const limit = sessionLimitFor(await this.ctx.settings.get(), userId, role)
    const note = `The account's role changed to ${role}, which allows ${limit} session${limit === 1 ? '' : 's'} at a time`
    // A login running now read the old role: wait for it, and keep new ones out while counting.
    await this.ctx.sessions.whileLoginsWait(userId, async (scope) => {
      const oldestFirst = await scope.liveSessions()
      await scope.end(oldestFirst.slice(0, Math.max(0, oldestFirst.length - limit)), 'session_limit', { actorUserId, note })
    })
  }

  /** Every remaining live session hears its new role (session.state), and the admin feeds reload them. */
  private async announceRole(userId: number) {
    const ids = await this.ctx.sessions.activeIdsOfUser(userId)
    for (const id of ids) await publishSessionState(this.ctx, id)
    await this.ctx.bus.publishAdminChange(ids)
  }

  async unlock(userId: number, actorUserId: number) {
    const user = await findUserById(this.ctx.database.db, userId)
    if (!user) throw userNotFound()
    await this.ctx.database.db.update(users).set({ lockedUntil: null }).where(eq(users.id, userId))
    const { redis, keys } = this.ctx
    await redis.unlink(keys.failedLogins(user.username), keys.lockedName(user.username))
    await this.ctx.audit.record({ type: 'user.unlocked', actorUserId, userId })
  }
}
