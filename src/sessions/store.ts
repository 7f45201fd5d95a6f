// PostgreSQL and Redis access for sessions. Returns null for "absent"; the service decides
// what that means. PostgreSQL holds the truth; Redis holds a cache of it (token hash →
// record) and the hot presence (last activity, tabs, view) that is written behind.
import type { Redis } from 'ioredis'
import type { Sql } from '../infra/db.js'
import { byShard, type RedisKeys } from '../infra/keys.js'
import { crossSlot } from '../infra/redis.js'
import { tabIdOf } from './tabs.js'
import type { EndReason } from './errors.js'
import type { ActivityOutcome, EndedSession, Presence, SessionRecord } from './records.js'
import { activityListsLua, activityLua, fillCacheLua, refreshCacheLua } from './store.lua.js'
import type { Device } from './tokens.js'

interface StoreCommands {
  tesseraActivity(...args: (string | number)[]): Promise<[number, number, number, number, number]>
  tesseraActivityLists(...args: (string | number)[]): Promise<number>
  tesseraFillCache(...args: (string | number)[]): Promise<number>
  tesseraRefreshCache(...args: (string | number)[]): Promise<number>
}

const OUTCOMES = ['recorded', 'idle_over', 'ended'] as const

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

const endedColumns = (sql: Sql) => sql`${sessionColumns(sql)}, s.token_hash, s.ended_by, s.end_note, s.end_tab_id, s.ip, s.device, s.finalized_at`

/** A jsonb column: parsed by the driver, or text (drizzle's pool passes JSON through). */
const jsonValue = (v: unknown) => (typeof v === 'string' ? JSON.parse(v) : v)

function toEnded(row: Record<string, unknown>): EndedSession {
  const record = toRecord(row)
  return {
    id: record.id,
    userId: record.userId,
    tokenHash: (row.token_hash as string).trim(),
    reason: record.endReason ?? 'logout',
    record,
    actorUserId: (row.ended_by as number | null) ?? null,
    note: (row.end_note as string | null) ?? null,
    byTabId: (row.end_tab_id as string | null) ?? null,
    ip: (row.ip as string | null) ?? null,
    device: (row.device as Device | null) ?? null,
    finalizedAt: row.finalized_at ? (row.finalized_at as Date).getTime() : null,
    lockRelease: row.lock_release_id ? { id: Number(row.lock_release_id), resources: jsonValue(row.lock_release_resources) as string[] } : null,
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
    redis.defineCommand('tesseraActivity', { numberOfKeys: 2, lua: activityLua })
    redis.defineCommand('tesseraActivityLists', { numberOfKeys: 5, lua: activityListsLua })
    redis.defineCommand('tesseraFillCache', { numberOfKeys: 1, lua: fillCacheLua })
    redis.defineCommand('tesseraRefreshCache', { numberOfKeys: 1, lua: refreshCacheLua })
  }

  private get commands() {
    return this.redis as unknown as StoreCommands
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

  /** Fills the token cache unless it holds a record already (see fillCacheLua). */
  async cache(tokenHash: string, record: SessionRecord): Promise<void> {
    const active = record.status === 'active'
    const ttlMs = active ? Math.max(record.expiresAt - Date.now(), 1000) : this.endedCacheSeconds * 1000
    const filled = await this.commands.tesseraFillCache(this.keys.sessionByToken(tokenHash), JSON.stringify(record), ttlMs)
    if (filled === 1 && active) await this.scheduleLifetime(record.id, record.expiresAt)
  }

  /** Puts ended records in the token cache, over whatever it held, for as long as tabs may still ask why. */
  async cacheEnded(ended: EndedSession[]): Promise<void> {
    if (ended.length === 0) return
    const pipeline = crossSlot(this.redis)
    for (const e of ended) pipeline.set(this.keys.sessionByToken(e.tokenHash), JSON.stringify(e.record), 'PX', this.endedCacheSeconds * 1000)
    await pipeline.exec()
  }

  /**
   * Writes the user's live sessions into the token cache as PostgreSQL has them now, over
   * whatever it held (see refreshCacheLua). Overwriting rather than deleting: a request that
   * read the old row just before can then not put the old role back (its fill only writes
   * an empty slot).
   */
  async recacheUser(userId: number): Promise<void> {
    const rows = await this.sql`
      select ${sessionColumns(this.sql)}, s.token_hash from sessions s join users u on u.id = s.user_id
      where s.user_id = ${userId} and s.status = 'active'`
    if (rows.length === 0) return
    const pipeline = crossSlot(this.redis)
    for (const row of rows) {
      const record = toRecord(row)
      const ttlMs = Math.max(record.expiresAt - Date.now(), 1000)
      ;(pipeline as unknown as StoreCommands).tesseraRefreshCache(this.keys.sessionByToken(row.token_hash as string), JSON.stringify(record), ttlMs)
    }
    await pipeline.exec()
  }

  /**
   * Records activity at `at` (never moving it backwards) when `write`, unless the session
   * has ended or its idle deadline passed by `now` (see activityLua). `fallback` is the last
   * activity to assume when Redis does not know it.
   */
  async recordActivity(
    session: { id: string; expiresAt: number },
    o: { now: number; at: number; idleTimeoutMs: number; fallback: number; write: boolean },
  ): Promise<ActivityOutcome> {
    const k = this.keys
    const [last, , outcome, known, lists] = await this.commands.tesseraActivity(
      k.sessionPresence(session.id),
      k.sessionEnded(session.id),
      o.now,
      o.at,
      o.idleTimeoutMs,
      o.fallback,
      o.write ? '1' : '0',
      session.expiresAt,
    )
    const removed = lists === 0 ? 0 : await this.moveOnLists(session.id, lists, lists === 1 ? o.at : last)
    return { last, wasIdle: removed > 0, outcome: OUTCOMES[outcome] ?? 'recorded', known: known === 1 }
  }

  /**
   * The deadline lists' side of recorded activity (activityListsLua): `what` 1 for input at
   * `at`, 2 for a session Redis forgot going back on due:active at `at`. Returns how many
   * idle or warned lists held it.
   */
  private moveOnLists(sessionId: string, what: number, at: number): Promise<number> {
    const d = this.keys.deadlines(sessionId)
    return this.commands.tesseraActivityLists(d.active, d.idle, d.warned, d.warnedEarly, d.dirty, sessionId, what, at)
  }

  /** Presence of each session; a tab not heard from within `tabStaleMs` no longer counts. */
  async presenceOf(sessionIds: string[]): Promise<Map<string, Presence>> {
    const out = new Map<string, Presence>()
    if (sessionIds.length === 0) return out
    const pipeline = crossSlot(this.redis)
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

  /** Puts a session on the lifetime deadline list of the sweep. */
  async scheduleLifetime(sessionId: string, expiresAt: number): Promise<void> {
    await this.redis.zadd(this.keys.deadlines(sessionId).lifetime, expiresAt, sessionId)
  }

  /** Takes ended sessions off every deadline list of the sweep. */
  async unschedule(sessionIds: string[]): Promise<void> {
    if (sessionIds.length === 0) return
    const pipeline = crossSlot(this.redis)
    for (const [d, ids] of byShard(this.keys, sessionIds)) for (const key of d.lists) pipeline.zrem(key, ...ids)
    await pipeline.exec()
  }

  /** Drops ended sessions' presence (tabs, view, last activity) and deadlines. */
  async forgetPresence(sessionIds: string[]): Promise<void> {
    if (sessionIds.length === 0) return
    const k = this.keys
    await this.unschedule(sessionIds)
    const pipeline = crossSlot(this.redis)
    for (const id of sessionIds) pipeline.unlink(k.sessionPresence(id), k.sessionTabs(id), k.sessionState(id))
    for (const [d, ids] of byShard(k, sessionIds)) pipeline.srem(d.dirty, ...ids)
    await pipeline.exec()
  }

  /** The hot last activity of a session, when Redis has it. */
  async hotLastActivity(sessionId: string): Promise<number | null> {
    const v = await this.redis.hget(this.keys.sessionPresence(sessionId), 'lastActivity')
    return v === null ? null : Number(v)
  }

  /** The final last activity of an ended session (the session-ended job); never moves it backwards. */
  async saveFinalLastActivity(sessionId: string, at: number): Promise<void> {
    await this.sql`update sessions set last_activity = greatest(last_activity, ${new Date(at)}) where id = ${sessionId}`
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

  /**
   * Ends the named sessions that are still active, and writes their `session.ended` audit
   * events in the same statement, so that an ending is never committed without its audit
   * event (R4). The same statement deletes every lock of those sessions and records each
   * session's release in a `locks.released` event (as Locks.releaseAllOf does), so a burst's
   * locks are free when its ending commits, not when its session-ended jobs get to them.
   * A lock taken by one of these sessions while this statement waited for its row is not in
   * its snapshot: the session-ended job still releases what is left. Returns the ones this
   * call ended.
   */
  async markEnded(
    sql: Sql,
    sessionIds: string[],
    reason: EndReason,
    by: { actorUserId?: number | null; note?: string | null; adminReason?: string | null; byTabId?: string | null; audit?: boolean } = {},
  ): Promise<EndedSession[]> {
    if (sessionIds.length === 0) return []
    const actor = by.actorUserId ?? null
    // `note` is what the user is shown; `adminReason` the admin's own words, when they differ.
    const data = { reason, ...(by.note ? { note: by.note } : {}), ...(by.adminReason ? { adminReason: by.adminReason } : {}) }
    const rows = await sql`
      with ended as (
        update sessions set status = 'ended', ended_at = now(), end_reason = ${reason},
          ended_by = ${actor}, end_note = ${by.note ?? null}, end_tab_id = ${by.byTabId ?? null}, version = version + 1
        where id = any(${sessionIds}::uuid[]) and status = 'active'
        returning *
      ), freed as (
        delete from locks l using ended e where l.session_id = e.id
        returning l.session_id, l.user_id, l.resource
      ), audited as (
        -- One insert, in order: each session.ended event before any locks.released one.
        insert into audit_events (type, actor_user_id, user_id, session_id, data)
        select a.type, a.actor, a.user_id, a.session_id, a.data from (
          select 1 as step, 'session.ended' as type, ${actor}::int as actor, e.user_id, e.id as session_id, ${JSON.stringify(data)}::jsonb as data
          from ended e where ${by.audit ?? true}::boolean
          union all
          select 2, 'locks.released', null::int, min(f.user_id), f.session_id,
            jsonb_build_object('resources', jsonb_agg(f.resource order by f.resource collate "C"), 'reason', ${reason}::text)
          from freed f group by f.session_id
        ) a order by a.step, a.session_id
        returning id, type, session_id, data
      )
      select ${endedColumns(sql)}, r.id as lock_release_id, r.data->'resources' as lock_release_resources
      from ended s join users u on u.id = s.user_id left join audited r on r.session_id = s.id and r.type = 'locks.released'`
    return rows.map(toEnded)
  }

  /** An ended session as the session-ended job needs it, or null when it is not (or no longer) there. */
  async findEnded(sessionId: string): Promise<EndedSession | null> {
    const [row] = await this.sql`
      select ${endedColumns(this.sql)} from sessions s join users u on u.id = s.user_id
      where s.id = ${sessionId} and s.status = 'ended'`
    return row ? toEnded(row) : null
  }

  /** Records that every follow-up of the ending is done. */
  async markFinalized(sessionId: string): Promise<void> {
    await this.sql`update sessions set finalized_at = now() where id = ${sessionId} and finalized_at is null`
  }

  /** Endings older than `olderThanSeconds` whose follow-up has not finished, oldest first (an index holds only these). */
  async unfinalized(olderThanSeconds: number, limit: number): Promise<{ id: string; userId: number; reason: EndReason; endedAt: number }[]> {
    const rows = await this.sql`
      select id, user_id, end_reason, ended_at from sessions
      where status = 'ended' and finalized_at is null and ended_at < now() - make_interval(secs => ${olderThanSeconds})
      order by ended_at limit ${limit}`
    return rows.map((r) => ({ id: r.id as string, userId: r.user_id as number, reason: r.end_reason as EndReason, endedAt: (r.ended_at as Date).getTime() }))
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

  /** Sessions by status for /metrics: active and idle (by `idleAfterSeconds`) now, ended in the last 24 hours. */
  async countByStatus(idleAfterSeconds: number): Promise<{ active: number; idle: number; ended: number }> {
    const [row] = await this.sql`select
        count(*) filter (where status = 'active' and last_activity > now() - make_interval(secs => ${idleAfterSeconds}))::int as active,
        count(*) filter (where status = 'active' and last_activity <= now() - make_interval(secs => ${idleAfterSeconds}))::int as idle,
        count(*) filter (where status = 'ended' and ended_at > now() - interval '24 hours')::int as ended
      from sessions where status = 'active' or ended_at > now() - interval '24 hours'`
    return { active: Number(row?.active ?? 0), idle: Number(row?.idle ?? 0), ended: Number(row?.ended ?? 0) }
  }
}
