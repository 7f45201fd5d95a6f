// Accounts: PostgreSQL access and the User shape the API returns.
import { and, asc, eq, gt, ilike, inArray, not, or, sql as dsql, type SQL } from 'drizzle-orm'
import { users } from '../../db/schema.js'
import type { Db, Queryable } from '../infra/db.js'
import { lastAdmin, userIdTooLarge, usernameTaken } from './errors.js'
import { checkPasswordStrength, hashPassword } from './passwords.js'

export type UserRow = typeof users.$inferSelect

export interface UserView {
  id: number
  username: string
  email: string | null
  role: string
  disabled: boolean
  lockedUntil: string | null
  createdAt: string
}

export function toUserView(u: UserRow): UserView {
  const locked = u.lockedUntil && u.lockedUntil.getTime() > Date.now() ? u.lockedUntil.toISOString() : null
  return { id: u.id, username: u.username, email: u.email, role: u.role, disabled: u.disabled, lockedUntil: locked, createdAt: u.createdAt.toISOString() }
}

export async function findUserByUsername(db: Db, username: string): Promise<UserRow | null> {
  const [row] = await db
    .select()
    .from(users)
    .where(eq(dsql`lower(${users.username})`, username.toLowerCase()))
  return row ?? null
}

export async function findUserById(db: Db, id: number): Promise<UserRow | null> {
  const [row] = await db.select().from(users).where(eq(users.id, id))
  return row ?? null
}

export async function createUser(
  db: Db,
  input: { username: string; email?: string | null; password: string; role: string },
): Promise<UserRow> {
  checkPasswordStrength(input.password, input.username)
  const passwordHash = await hashPassword(input.password)
  const [row] = await db
    .insert(users)
    .values({ username: input.username, email: input.email ?? null, passwordHash, role: input.role })
    .onConflictDoNothing()
    .returning()
  if (!row) throw usernameTaken(input.username)
  return row
}

export async function listUsers(db: Db, q: { q?: string; role?: string; limit: number; cursor?: number }) {
  const where: SQL[] = []
  if (q.q) {
    const like = `%${q.q.replace(/[\\%_]/g, '\\$&')}%`
    where.push(or(ilike(users.username, like), ilike(users.email, like))!)
  }
  if (q.role) where.push(eq(users.role, q.role))
  if (q.cursor) where.push(gt(users.id, q.cursor))
  const rows = await db
    .select()
    .from(users)
    .where(where.length ? and(...where) : undefined)
    .orderBy(asc(users.id))
    .limit(q.limit + 1)
  const page = rows.slice(0, q.limit)
  return { items: page.map(toUserView), nextCursor: rows.length > q.limit ? String(page.at(-1)!.id) : null }
}

const LAST_ADMIN_LOCK = 7_311_999_002

/**
 * Refuses to demote or disable the last enabled admin, on the caller's transaction. Two
 * admins removing each other at once must not both count the other as the one that
 * remains: such changes take turns, and each reads the state the last one left.
 */
export async function keepAnAdmin(tx: Queryable, userId: number) {
  await tx.execute(dsql`select pg_advisory_xact_lock(${LAST_ADMIN_LOCK})`)
  const [current] = await tx.select({ role: users.role, disabled: users.disabled }).from(users).where(eq(users.id, userId))
  if (current?.role !== 'admin' || current.disabled) return
  const others = await tx.$count(users, and(eq(users.role, 'admin'), not(users.disabled), not(eq(users.id, userId))))
  if (others === 0) throw lastAdmin()
}

/** What an administrator changes of an account. */
export interface AccountChange {
  role?: string
  disabled?: boolean
  email?: string | null
  passwordHash?: string
}

/** Writes the change on the caller's transaction; the account's role after it, or null when there is no such user. */
export async function changeAccountIn(tx: Queryable, userId: number, change: AccountChange): Promise<{ role: string } | null> {
  const [row] = await tx
    .update(users)
    .set({ role: change.role, disabled: change.disabled, email: change.email, passwordHash: change.passwordHash, updatedAt: dsql`now()` })
    .where(eq(users.id, userId))
    .returning({ role: users.role })
  return row ?? null
}

/** Ends the account's lockout as PostgreSQL records it (the Redis marks are the caller's). */
export async function clearLockout(db: Db, userId: number): Promise<void> {
  await db.update(users).set({ lockedUntil: null }).where(eq(users.id, userId))
}

/** The id of a user named by username (any case) or by id; null when none, undefined when none asked. */
export async function userIdByName(db: Db, username: string | undefined): Promise<number | null | undefined> {
  if (username === undefined) return undefined
  if (/^\d+$/.test(username)) {
    const id = Number(username)
    // User ids are PostgreSQL integers: a longer number names no user and is a mistake.
    if (id > 2_147_483_647) throw userIdTooLarge(username)
    return id
  }
  const [row] = await db
    .select({ id: users.id })
    .from(users)
    .where(eq(dsql`lower(${users.username})`, username.toLowerCase()))
  return row?.id ?? null
}

/** Those of the users that are enabled admins now. */
export async function enabledAdminsAmong(db: Db, userIds: number[]): Promise<Set<number>> {
  if (userIds.length === 0) return new Set()
  const rows = await db
    .select({ id: users.id })
    .from(users)
    .where(and(inArray(users.id, userIds), eq(users.role, 'admin'), not(users.disabled)))
  return new Set(rows.map((r) => r.id))
}
