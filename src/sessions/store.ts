// PostgreSQL and Redis access for sessions. Returns null for "absent"; the service decides
// what that means. PostgreSQL holds the truth; Redis holds a cache of it (token hash →
// record) and the hot presence (last activity, tabs, view) that is written behind.
import type { Redis } from 'ioredis'
import type { Sql } from '../infra/db.js'
import type { RedisKeys } from '../infra/keys.js'
import { tabIdOf } from '../presence/service.js'
import type { EndReason } from './errors.js'
import type { Device } from './tokens.js'

export interface SessionRecord {
  id: string
  userId: number
  username: string
  email: string | null
  role: string
  userDisabled: boolean
  status: 'active' | 'ended'
  endReason: EndReason | null
  createdAt: number
  expiresAt: number
  endedAt: number | null
  /** PostgreSQL's copy of the last activity at the time the record was loaded. */
  lastActivity: number
  fingerprint: string | null
}

export interface EndedSession {
  id: string
  userId: number
  tokenHash: string
  reason: EndReason
}

export interface Presence {
  lastActivity: number | null
  tabs: number
  view: string | null
}

// Activity is kept in two places at once: the session's presence hash (lastActivity) and
// the sweep's sorted sets (due:active scored by last activity; due:idle and due:warned once
// the sweep has flagged it), plus a dirty set for the write-behind to PostgreSQL.
// KEYS: presence, due:active, due:idle, due:warned, dirty
const ACTIVITY_KEYS = 5

// Checks the idle deadline and records activity in one step, so that two nodes can never
// revive a session that one of them has just found idle past its timeout.
// ARGV: session id, now, idle timeout ms, fallback last activity, touch (1/0), expire-at ms
// Returns { last activity before this call, 1 when the session was flagged idle }.
const touchLua = `
local last = tonumber(redis.call('HGET', KEYS[1], 'lastActivity') or ARGV[4])
if tonumber(ARGV[2]) - last >= tonumber(ARGV[3]) then return {last, 0} end
local wasIdle = 0
if ARGV[5] == '1' then
  redis.call('HSET', KEYS[1], 'lastActivity', ARGV[2])
  redis.call('PEXPIREAT', KEYS[1], ARGV[6])
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
  wasIdle = redis.call('ZREM', KEYS[3], ARGV[1]) + redis.call('ZREM', KEYS[4], ARGV[1])
  redis.call('SADD', KEYS[5], ARGV[1])
elseif redis.call('HEXISTS', KEYS[1], 'lastActivity') == 0 then
  redis.call('HSET', KEYS[1], 'lastActivity', last)
  redis.call('PEXPIREAT', KEYS[1], ARGV[6])
  if redis.call('ZSCORE', KEYS[3], ARGV[1]) == false and redis.call('ZSCORE', KEYS[4], ARGV[1]) == false then
    redis.call('ZADD', KEYS[2], last, ARGV[1])
  end
end
return {last, wasIdle}
`

// Input reported by a tab: never moves last activity backwards.
// ARGV: session id, input time, fallback last activity, expire-at ms. Returns like touchLua.
const inputLua = `
local last = tonumber(redis.call('HGET', KEYS[1], 'lastActivity') or ARGV[3])
local wasIdle = 0
if tonumber(ARGV[2]) > last then
  redis.call('HSET', KEYS[1], 'lastActivity', ARGV[2])
  redis.call('PEXPIREAT', KEYS[1], ARGV[4])
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
  wasIdle = redis.call('ZREM', KEYS[3], ARGV[1]) + redis.call('ZREM', KEYS[4], ARGV[1])
  redis.call('SADD', KEYS[5], ARGV[1])
end
return {last, wasIdle}
`

type ActivityResult = Promise<[number, number]>

interface ActivityCommands {
  tesseraTouch(...args: (string | number)[]): ActivityResult
  tesseraInput(...args: (string | number)[]): ActivityResult
}

const sessionColumns = (sql: Sql) => sql`
  s.id, s.user_id, u.username, u.email, u.role, u.disabled, s.status, s.end_reason,
  s.created_at, s.expires_at, s.ended_at, s.last_activity, s.fingerprint`

function toRecord(row: Record<string, unknown>): SessionRecord {
  return {
    id: row.id as string,
    userId: row.user_id as number,
    username: row.username as string,
    email: (row.email as string | null) ?? null,
    role: row.role as string,
    userDisabled: row.disabled as boolean,
    status: row.status as 'active' | 'ended',
    endReason: (row.end_reason as EndReason | null) ?? null,
    createdAt: (row.created_at as Date).getTime(),
    expiresAt: (row.expires_at as Date).getTime(),
    endedAt: row.ended_at ? (row.ended_at as Date).getTime() : null,
    lastActivity: (row.last_activity as Date).getTime(),
    fingerprint: (row.fingerprint as string | null)?.trim() ?? null,
  }
}

export class SessionStore {
  constructor(
    readonly sql: Sql,
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly endedCacheSeconds: number,
    private readonly tabStaleMs: number,
  ) {
    redis.defineCommand('tesseraTouch', { numberOfKeys: ACTIVITY_KEYS, lua: touchLua })
    redis.defineCommand('tesseraInput', { numberOfKeys: ACTIVITY_KEYS, lua: inputLua })
  }

  async findByTokenHash(tokenHash: string): Promise<SessionRecord | null> {
    const cached = await this.redis.get(this.keys.sessionByToken(tokenHash))
    if (cached) return JSON.parse(cached) as SessionRecord
    const [row] = await this.sql`
      select ${sessionColumns(this.sql)} from sessions s join users u on u.id = s.user_id
      where s.token_hash = ${tokenHash}`
    if (!row) return null
    const record = toRecord(row)
    await this.cache(tokenHash, record)
    return record
  }

  async findById(sessionId: string): Promise<SessionRecord | null> {
    const [row] = await this.sql`
      select ${sessionColumns(this.sql)} from sessions s join users u on u.id = s.user_id where s.id = ${sessionId}`
    return row ? toRecord(row) : null
  }

  async cache(tokenHash: string, record: SessionRecord): Promise<void> {
    const ttlMs = record.status === 'active' ? Math.max(record.expiresAt - Date.now(), 1000) : this.endedCacheSeconds * 1000
    const pipeline = this.redis.pipeline().set(this.keys.sessionByToken(tokenHash), JSON.stringify(record), 'PX', ttlMs)
    if (record.status === 'active') pipeline.zadd(this.keys.dueLifetime, record.expiresAt, record.id)
    await pipeline.exec()
  }

  async forgetTokens(tokenHashes: string[]): Promise<void> {
    if (tokenHashes.length > 0) await this.redis.unlink(...tokenHashes.map((h) => this.keys.sessionByToken(h)))
  }

  private activityKeys(sessionId: string) {
    const k = this.keys
    return [k.sessionPresence(sessionId), k.dueActive, k.dueIdle, k.dueWarned, k.dirtyActivity]
  }

  /**
   * Records activity (when `touch`) unless the idle timeout has already passed.
   * Returns the previous last activity and whether the session had been flagged idle.
   */
  async touch(record: SessionRecord, now: number, idleTimeoutMs: number, touch: boolean): Promise<{ last: number; wasIdle: boolean }> {
    const [last, wasIdle] = await (this.redis as unknown as ActivityCommands).tesseraTouch(
      ...this.activityKeys(record.id),
      record.id,
      now,
      idleTimeoutMs,
      record.lastActivity,
      touch ? '1' : '0',
      record.expiresAt,
    )
    return { last, wasIdle: wasIdle > 0 }
  }

  /** Presence of each session; a tab not heard from within `tabStaleMs` no longer counts. */
  async presenceOf(sessionIds: string[]): Promise<Map<string, Presence>> {
    const out = new Map<string, Presence>()
    if (sessionIds.length === 0) return out
    const pipeline = this.redis.pipeline()
    const since = Date.now() - this.tabStaleMs
    for (const id of sessionIds) {
      pipeline.hmget(this.keys.sessionPresence(id), 'lastActivity', 'view')
      pipeline.zrangebyscore(this.keys.sessionTabs(id), since, '+inf')
    }
    const results = (await pipeline.exec()) ?? []
    sessionIds.forEach((id, i) => {
      const [lastActivity, view] = (results[2 * i]?.[1] as (string | null)[] | undefined) ?? []
      out.set(id, {
        lastActivity: lastActivity ? Number(lastActivity) : null,
        // One member per socket: a tab whose old socket is not yet reaped counts once.
        tabs: new Set(((results[2 * i + 1]?.[1] as string[] | undefined) ?? []).map(tabIdOf)).size,
        view: view ?? null,
      })
    })
    return out
  }

  /** Records user input at `at` (never moving last activity backwards). */
  async recordInput(session: { id: string; lastActivity: number; expiresAt: number }, at: number): Promise<{ last: number; wasIdle: boolean }> {
    const [last, wasIdle] = await (this.redis as unknown as ActivityCommands).tesseraInput(
      ...this.activityKeys(session.id),
      session.id,
      at,
      session.lastActivity,
      session.expiresAt,
    )
    return { last, wasIdle: wasIdle > 0 }
  }

  /** Puts a session on the lifetime deadline list of the sweep. */
  async scheduleLifetime(sessionId: string, expiresAt: number): Promise<void> {
    await this.redis.zadd(this.keys.dueLifetime, expiresAt, sessionId)
  }

  /** Takes ended sessions off every deadline list of the sweep. */
  async unschedule(sessionIds: string[]): Promise<void> {
    if (sessionIds.length === 0) return
    const k = this.keys
    const pipeline = this.redis.pipeline()
    for (const key of [k.dueActive, k.dueIdle, k.dueWarned, k.dueLifetime]) pipeline.zrem(key, ...sessionIds)
    await pipeline.exec()
  }

  /** Drops ended sessions' presence (tabs, view, last activity) and deadlines. */
  async forgetPresence(sessionIds: string[]): Promise<void> {
    if (sessionIds.length === 0) return
    const k = this.keys
    await this.unschedule(sessionIds)
    await this.redis
      .pipeline()
      .unlink(...sessionIds.flatMap((id) => [k.sessionPresence(id), k.sessionTabs(id)]))
      .srem(k.dirtyActivity, ...sessionIds)
      .exec()
  }

  /** The hot last activity of a session, when Redis has it. */
  async hotLastActivity(sessionId: string): Promise<number | null> {
    const v = await this.redis.hget(this.keys.sessionPresence(sessionId), 'lastActivity')
    return v === null ? null : Number(v)
  }

  /** Write-behind of last activity; never moves it backwards. */
  async saveLastActivity(sessionId: string, at: number): Promise<void> {
    await this.sql`update sessions set last_activity = ${new Date(at)}
      where id = ${sessionId} and status = 'active' and last_activity < ${new Date(at)}`
  }

  async insert(
    sql: Sql,
    s: {
      id: string
      userId: number
      tokenHash: string
      platformId: number | null
      expiresAt: Date
      ip: string | null
      userAgent: string | null
      device: Device
      fingerprint: string | null
    },
  ): Promise<void> {
    await sql`insert into sessions
      (id, user_id, token_hash, active_platform_id, expires_at, ip, user_agent, device, fingerprint)
      values (${s.id}, ${s.userId}, ${s.tokenHash}, ${s.platformId}, ${s.expiresAt}, ${s.ip}, ${s.userAgent},
              ${JSON.stringify(s.device)}::jsonb, ${s.fingerprint})`
  }

  /** Ends the named sessions that are still active; returns the ones this call ended. */
  async markEnded(
    sql: Sql,
    sessionIds: string[],
    reason: EndReason,
    by: { actorUserId?: number | null; note?: string | null } = {},
  ): Promise<EndedSession[]> {
    if (sessionIds.length === 0) return []
    const rows = await sql`
      update sessions set status = 'ended', ended_at = now(), end_reason = ${reason},
        ended_by = ${by.actorUserId ?? null}, end_note = ${by.note ?? null}, version = version + 1
      where id = any(${sql.array(sessionIds)}::uuid[]) and status = 'active'
      returning id, user_id, token_hash`
    return rows.map((r) => ({ id: r.id as string, userId: r.user_id as number, tokenHash: r.token_hash as string, reason }))
  }

  async activeSessionIdsOfUser(sql: Sql, userId: number): Promise<{ id: string; lastActivity: number; createdAt: number; expiresAt: number }[]> {
    const rows = await sql`select id, last_activity, created_at, expires_at from sessions
      where user_id = ${userId} and status = 'active' order by last_activity asc`
    return rows.map((r) => ({
      id: r.id as string,
      lastActivity: (r.last_activity as Date).getTime(),
      createdAt: (r.created_at as Date).getTime(),
      expiresAt: (r.expires_at as Date).getTime(),
    }))
  }

  async activeTokenHashesOfUser(userId: number): Promise<string[]> {
    const rows = await this.sql`select token_hash from sessions where user_id = ${userId} and status = 'active'`
    return rows.map((r) => r.token_hash as string)
  }
}
