// PostgreSQL and Redis access for sessions. Returns null for "absent"; the service decides
// what that means. PostgreSQL holds the truth; Redis holds a cache of it (token hash →
// record) and the hot presence (last activity, tabs, view) that is written behind.
import { and, asc, eq, gt, inArray, isNull, lt, or, sql } from 'drizzle-orm'
import type { ClientContext, Redis, Result } from 'ioredis'
import { sessions, users } from '../../db/schema.js'
import { type Db, executePrepared, type Queryable } from '../infra/db.js'
import { GroupRead } from '../infra/group-read.js'
import { byShard, type SessionSlotKeys } from './keys.js'
import { crossSlot, isCluster } from '../infra/redis.js'
import { tabIdOf } from './tabs.js'
import { type EndReason, endReasonOf } from './errors.js'
import { type EndingRow, endedColumns, recordColumns, toEnded, toRecord } from './store.rows.js'
import { type ActivityOutcome, type EndedSession, type Presence, parseRecord, type SessionRecord } from './records.js'
import { activityListsLua, activityLua, activityWithListsLua, fillCacheLua, ID_PLACEHOLDER, recordSpendingLua, refreshCacheLua } from './store.lua.js'
import type { Device } from './tokens.js'

declare module 'ioredis' {
  interface RedisCommander<Context extends ClientContext = { type: 'default' }> {
    tesseraActivity(...args: (string | number)[]): Result<[number, number, number, number, number], Context>
    tesseraActivityLists(...args: (string | number)[]): Result<number, Context>
    tesseraActivityWithLists(...args: (string | number)[]): Result<[number, number, number, number, number, number], Context>
    tesseraFillCache(...args: (string | number)[]): Result<number, Context>
    tesseraRefreshCache(...args: (string | number)[]): Result<number, Context>
    tesseraRecordSpending(tokenKey: string, budgetTemplate: string, windowMs: number): Result<[] | [string, number, number], Context>
  }
}

const OUTCOMES = ['recorded', 'idle_over', 'ended'] as const
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

// A pipeline's replies come back untyped: HMGET's fields (null when absent), a sorted set's members.
const fieldsOf = (reply: unknown): (string | null)[] => (Array.isArray(reply) ? reply.map((v) => (typeof v === 'string' ? v : null)) : [])
const membersOf = (reply: unknown): string[] => (Array.isArray(reply) ? reply.filter((v) => typeof v === 'string') : [])

/** What the activity scripts answered: `removed`, how many idle or warned lists held the session. */
const activityOutcome = (last: number, outcome: number, known: number, removed: number): ActivityOutcome => ({
  last,
  wasIdle: removed > 0,
  outcome: OUTCOMES[outcome] ?? 'recorded',
  known: known === 1,
})

export class SessionStore {
  // Prepared (every request that misses the token cache, every hello reads one): postgres.js describes each
  // statement once per connection, not before every run as for drizzle's unprepared ones (a round trip of its own).
  private readonly byTokenHash
  /** Every hello reads its session by id: concurrent hellos share one query. */
  private readonly byId: GroupRead<string, SessionRecord>
  /** One Redis, not a Cluster: a record with its budget, and activity with the deadline lists, are each one script. */
  private readonly oneRedis: boolean

  constructor(
    private readonly db: Db,
    private readonly redis: Redis,
    private readonly keys: SessionSlotKeys,
    private readonly endedCacheSeconds: number,
    private readonly tabStaleMs: number,
  ) {
    this.oneRedis = !isCluster(redis)
    redis.defineCommand('tesseraActivity', { numberOfKeys: 2, lua: activityLua })
    redis.defineCommand('tesseraActivityLists', { numberOfKeys: 5, lua: activityListsLua })
    redis.defineCommand('tesseraActivityWithLists', { numberOfKeys: 7, lua: activityWithListsLua })
    redis.defineCommand('tesseraRecordSpending', { numberOfKeys: 1, lua: recordSpendingLua })
    redis.defineCommand('tesseraFillCache', { numberOfKeys: 1, lua: fillCacheLua })
    redis.defineCommand('tesseraRefreshCache', { numberOfKeys: 1, lua: refreshCacheLua })
    this.byTokenHash = this.records().where(eq(sessions.tokenHash, sql.placeholder('tokenHash'))).prepare('session_by_token_hash')
    const byIds = this.records().where(sql`${sessions.id} = any(${sql.placeholder('ids')}::uuid[])`).prepare('sessions_by_ids')
    this.byId = new GroupRead(async (ids) => new Map((await byIds.execute({ ids })).map((row) => [row.id, toRecord(row)])))
  }

  /**
   * On one Redis, the token cache's record with one request of its session's API budget
   * spent, in one round trip (recordSpendingLua); null when the cache holds no record
   * (nothing is spent) or on a Cluster, where the two are in different slots.
   */
  async cachedRecordSpending(tokenHash: string, windowMs: number): Promise<{ record: SessionRecord; count: number; ttl: number } | null> {
    if (!this.oneRedis) return null
    const found = await this.redis.tesseraRecordSpending(this.keys.sessionByToken(tokenHash), this.keys.sessionBudget(ID_PLACEHOLDER), windowMs)
    if (found.length === 0) return null
    const [raw, count, ttl] = found
    return { record: parseRecord(raw), count, ttl }
  }

  async findByTokenHash(tokenHash: string): Promise<SessionRecord | null> {
    const cached = await this.redis.get(this.keys.sessionByToken(tokenHash))
    if (cached) return parseRecord(cached)
    const [row] = await this.byTokenHash.execute({ tokenHash })
    if (!row) return null
    const record = toRecord(row)
    await this.cache(tokenHash, record)
    return record
  }

  /** Null for an id that is no session's, also for one that is not a UUID (which would fail the shared query). */
  findById(sessionId: string): Promise<SessionRecord | null> {
    return UUID.test(sessionId) ? this.byId.get(sessionId.toLowerCase()) : Promise.resolve(null)
  }

  private records() {
    return this.db.select(recordColumns).from(sessions).innerJoin(users, eq(users.id, sessions.userId))
  }

  /** Fills the token cache unless it holds a record already (see fillCacheLua). */
  async cache(tokenHash: string, record: SessionRecord): Promise<void> {
    const active = record.status === 'active'
    const ttlMs = active ? Math.max(record.expiresAt - Date.now(), 1000) : this.endedCacheSeconds * 1000
    const filled = await this.redis.tesseraFillCache(this.keys.sessionByToken(tokenHash), JSON.stringify(record), ttlMs)
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
    const rows = await this.db
      .select({ ...recordColumns, tokenHash: sessions.tokenHash })
      .from(sessions)
      .innerJoin(users, eq(users.id, sessions.userId))
      .where(and(eq(sessions.userId, userId), eq(sessions.status, 'active')))
    if (rows.length === 0) return
    const pipeline = crossSlot(this.redis)
    for (const row of rows) {
      const record = toRecord(row)
      const ttlMs = Math.max(record.expiresAt - Date.now(), 1000)
      pipeline.tesseraRefreshCache(this.keys.sessionByToken(row.tokenHash), JSON.stringify(record), ttlMs)
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
    const args = [o.now, o.at, o.idleTimeoutMs, o.fallback, o.write ? '1' : '0', session.expiresAt]
    if (this.oneRedis) {
      const d = k.deadlines(session.id)
      const [last, , outcome, known, , removed] = await this.redis.tesseraActivityWithLists(
        k.sessionPresence(session.id),
        k.sessionEnded(session.id),
        d.active,
        d.idle,
        d.warned,
        d.warnedEarly,
        d.dirty,
        ...args,
        session.id,
      )
      return activityOutcome(last, outcome, known, removed)
    }
    const [last, , outcome, known, lists] = await this.redis.tesseraActivity(k.sessionPresence(session.id), k.sessionEnded(session.id), ...args)
    const removed = lists === 0 ? 0 : await this.moveOnLists(session.id, lists, lists === 1 ? o.at : last)
    return activityOutcome(last, outcome, known, removed)
  }

  /**
   * The deadline lists' side of recorded activity (activityListsLua): `what` 1 for input at
   * `at`, 2 for a session Redis forgot going back on due:active at `at`. Returns how many
   * idle or warned lists held it.
   */
  private moveOnLists(sessionId: string, what: number, at: number): Promise<number> {
    const d = this.keys.deadlines(sessionId)
    return this.redis.tesseraActivityLists(d.active, d.idle, d.warned, d.warnedEarly, d.dirty, sessionId, what, at)
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
      const [lastActivity, view] = fieldsOf(results[2 * i]?.[1])
      out.set(id, {
        lastActivity: lastActivity ? Number(lastActivity) : null,
        // One member per socket: a tab whose old socket is not yet reaped counts once.
        tabs: new Set(membersOf(results[2 * i + 1]?.[1]).map(tabIdOf)).size,
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
    await this.db
      .update(sessions)
      .set({ lastActivity: sql`greatest(${sessions.lastActivity}, ${sql.param(new Date(at), sessions.lastActivity)})` })
      .where(eq(sessions.id, sessionId))
  }

  async insert(
    db: Queryable,
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
    await db.insert(sessions).values({
      id: s.id,
      userId: s.userId,
      tokenHash: s.tokenHash,
      activePlatformId: s.platformId,
      expiresAt: s.expiresAt,
      ip: s.ip,
      userAgent: s.userAgent,
      device: s.device,
      fingerprint: s.fingerprint,
    })
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
    db: Queryable,
    sessionIds: string[],
    reason: EndReason,
    by: { actorUserId?: number | null; note?: string | null; adminReason?: string | null; byTabId?: string | null; audit?: boolean } = {},
  ): Promise<EndedSession[]> {
    if (sessionIds.length === 0) return []
    const actor = by.actorUserId ?? null
    // `note` is what the user is shown; `adminReason` the admin's own words, when they differ.
    const data = { reason, ...(by.note ? { note: by.note } : {}), ...(by.adminReason ? { adminReason: by.adminReason } : {}) }
    const rows = await executePrepared<EndingRow>(
      db,
      sql`
      with ended as (
        update sessions set status = 'ended', ended_at = now(), end_reason = ${reason},
          ended_by = ${actor}, end_note = ${by.note ?? null}, end_tab_id = ${by.byTabId ?? null}, version = version + 1
        where ${inArray(sessions.id, sessionIds)} and status = 'active'
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
      select s.id, s.user_id as "userId", u.username, u.email, u.role, u.disabled as "userDisabled", s.status,
        s.end_reason as "endReason", s.created_at as "createdAt", s.expires_at as "expiresAt", s.ended_at as "endedAt",
        s.last_activity as "lastActivity", s.fingerprint, s.token_hash as "tokenHash", s.ended_by as "endedBy",
        s.end_note as "endNote", s.end_tab_id as "endTabId", s.ip, s.device, s.finalized_at as "finalizedAt",
        r.id as "lockReleaseId", r.data->'resources' as "lockReleaseResources"
      from ended s join users u on u.id = s.user_id left join audited r on r.session_id = s.id and r.type = 'locks.released'`,
      'sessions_end',
    )
    return rows.map((row) =>
      toEnded(row, row.lockReleaseId === null ? null : { id: Number(row.lockReleaseId), resources: row.lockReleaseResources ?? [] }),
    )
  }

  /** An ended session as the session-ended job needs it, or null when it is not (or no longer) there. */
  async findEnded(sessionId: string): Promise<EndedSession | null> {
    const [row] = await this.db
      .select(endedColumns)
      .from(sessions)
      .innerJoin(users, eq(users.id, sessions.userId))
      .where(and(eq(sessions.id, sessionId), eq(sessions.status, 'ended')))
    return row ? toEnded(row) : null
  }

  /** Records that every follow-up of the ending is done. */
  async markFinalized(sessionId: string): Promise<void> {
    await this.db.update(sessions).set({ finalizedAt: sql`now()` }).where(and(eq(sessions.id, sessionId), isNull(sessions.finalizedAt)))
  }

  /** Endings older than `olderThanSeconds` whose follow-up has not finished, oldest first (an index holds only these). */
  async unfinalized(olderThanSeconds: number, limit: number): Promise<{ id: string; userId: number; reason: EndReason; endedAt: number }[]> {
    // Every ended row has its ended_at (the column may be null, these rows' never is).
    const endedAt = sql`${sessions.endedAt}`.mapWith(sessions.endedAt)
    const rows = await this.db
      .select({ id: sessions.id, userId: sessions.userId, endReason: sessions.endReason, endedAt })
      .from(sessions)
      .where(and(eq(sessions.status, 'ended'), isNull(sessions.finalizedAt), lt(sessions.endedAt, sql`now() - make_interval(secs => ${olderThanSeconds})`)))
      .orderBy(asc(sessions.endedAt))
      .limit(limit)
    return rows.map((r) => ({ id: r.id, userId: r.userId, reason: endReasonOf(r.endReason) ?? 'logout', endedAt: r.endedAt.getTime() }))
  }

  async activeSessionIdsOfUser(db: Queryable, userId: number): Promise<{ id: string; lastActivity: number; createdAt: number; expiresAt: number }[]> {
    const rows = await db
      .select({ id: sessions.id, lastActivity: sessions.lastActivity, createdAt: sessions.createdAt, expiresAt: sessions.expiresAt })
      .from(sessions)
      .where(and(eq(sessions.userId, userId), eq(sessions.status, 'active')))
      .orderBy(asc(sessions.lastActivity))
    return rows.map((r) => ({
      id: r.id,
      lastActivity: r.lastActivity.getTime(),
      createdAt: r.createdAt.getTime(),
      expiresAt: r.expiresAt.getTime(),
    }))
  }

  /** Sessions by status for /metrics: active and idle (by `idleAfterSeconds`) now, ended in the last 24 hours. */
  async countByStatus(idleAfterSeconds: number): Promise<{ active: number; idle: number; ended: number }> {
    const idleSince = sql`now() - make_interval(secs => ${idleAfterSeconds})`
    const dayAgo = sql`now() - interval '24 hours'`
    const [row] = await this.db
      .select({
        active: sql<number>`count(*) filter (where ${sessions.status} = 'active' and ${sessions.lastActivity} > ${idleSince})::int`,
        idle: sql<number>`count(*) filter (where ${sessions.status} = 'active' and ${sessions.lastActivity} <= ${idleSince})::int`,
        ended: sql<number>`count(*) filter (where ${sessions.status} = 'ended' and ${sessions.endedAt} > ${dayAgo})::int`,
      })
      .from(sessions)
      .where(or(eq(sessions.status, 'active'), gt(sessions.endedAt, dayAgo)))
    return { active: row?.active ?? 0, idle: row?.idle ?? 0, ended: row?.ended ?? 0 }
  }
}
