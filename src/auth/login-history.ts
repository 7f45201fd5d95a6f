// Login history (login_attempts, written by sign-in): the admin's list, newest first.
import type { Pool } from '../infra/db.js'

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

export async function loginHistory(sql: Pool, f: LoginHistoryFilter): Promise<LoginAttemptRow[]> {
  const rows = await sql`
        select id, user_id, username, host(ip) as ip, user_agent, success, reason, method, at, flags from login_attempts
        where true
          ${f.user !== undefined ? sql`and (lower(username) = ${f.user.toLowerCase()} or user_id::text = ${f.user})` : sql``}
          ${f.from ? sql`and at >= ${f.from}` : sql``}
          ${f.to ? sql`and at <= ${f.to}` : sql``}
          ${f.success !== undefined ? sql`and success = ${f.success}` : sql``}
          ${f.ip ? sql`and host(ip) = ${f.ip}` : sql``}
          ${f.before !== undefined ? sql`and id < ${f.before}` : sql``}
        order by id desc limit ${f.limit}`
  return rows.map((r) => ({
    id: Number(r.id),
    userId: (r.user_id as number | null) ?? null,
    username: r.username as string,
    ip: (r.ip as string | null) ?? null,
    userAgent: (r.user_agent as string | null) ?? null,
    success: r.success as boolean,
    reason: r.reason as string,
    method: r.method as string,
    at: (r.at as Date).toISOString(),
    flags: (r.flags as string[]) ?? [],
  }))
}
