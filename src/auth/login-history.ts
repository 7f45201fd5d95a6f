// Login history (login_attempts, written by sign-in): the admin's list, newest first, and
// its retention (the cleanup job).
import { and, asc, desc, eq, gte, inArray, lt, lte, or, type SQL, sql } from 'drizzle-orm'
import { loginAttempts } from '../../db/schema.js'
import type { Db } from '../infra/db.js'

export interface LoginHistoryFilter {
  /** A username (any case) or a user id. */
  user?: string
  from?: Date
  to?: Date
  success?: boolean
  ip?: string
  /** Only attempts older than this id (the cursor). */
  before?: number
  limit: number
}

export interface LoginAttemptRow {
  id: number
  userId: number | null
  username: string
  ip: string | null
  userAgent: string | null
  success: boolean
  reason: string
  method: string
  at: string
  flags: string[]
}

export class LoginHistory {
  constructor(private readonly db: Db) {}

  async list(f: LoginHistoryFilter): Promise<LoginAttemptRow[]> {
    const t = loginAttempts
    const where: SQL[] = []
    if (f.user !== undefined) where.push(or(eq(sql`lower(${t.username})`, f.user.toLowerCase()), eq(sql`${t.userId}::text`, f.user))!)
    if (f.from) where.push(gte(t.at, f.from))
    if (f.to) where.push(lte(t.at, f.to))
    if (f.success !== undefined) where.push(eq(t.success, f.success))
    if (f.ip) where.push(eq(sql`host(${t.ip})`, f.ip))
    if (f.before !== undefined) where.push(lt(t.id, f.before))
    const rows = await this.db
      .select({
        id: t.id,
        userId: t.userId,
        username: t.username,
        ip: sql<string | null>`host(${t.ip})`,
        userAgent: t.userAgent,
        success: t.success,
        reason: t.reason,
        method: t.method,
        at: t.at,
        flags: t.flags,
      })
      .from(t)
      .where(and(...where))
      .orderBy(desc(t.id))
      .limit(f.limit)
    return rows.map((r) => ({
      ...r,
      at: r.at.toISOString(),
      flags: r.flags ?? [],
    }))
  }

  /** Deletes up to `limit` attempts older than `days`, oldest first; how many it deleted. */
  async purgeBatch(days: number, limit: number): Promise<number> {
    const t = loginAttempts
    const oldest = this.db
      .select({ id: t.id })
      .from(t)
      .where(lt(t.at, sql`now() - make_interval(days => ${days})`))
      .orderBy(asc(t.id))
      .limit(limit)
    const deleted = await this.db.delete(t).where(inArray(t.id, oldest)).returning({ id: t.id })
    return deleted.length
  }
}
