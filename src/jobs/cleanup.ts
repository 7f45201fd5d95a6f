// The cleanup job: ends sessions whose deadline passed while no sweep saw them (workers
// down, Redis lost its deadline lists), applies the retention of audit events and login
// history, and removes Redis entries that no live session owns.
import type { Redis } from 'ioredis'
import type { Pool } from '../infra/db.js'
import type { RedisKeys } from '../infra/keys.js'
import type { Sessions } from '../sessions/service.js'
import type { SessionStore } from '../sessions/store.js'
import type { SettingsService } from '../settings/service.js'
import type { LockReleaser } from './session-ended.js'

export interface CleanupDeps {
  locks: LockReleaser
  sql: Pool
  redis: Redis
  keys: RedisKeys
  sessions: Sessions
  store: SessionStore
  settings: SettingsService
  batchSize: number
  retention: { auditDays: number; loginHistoryDays: number }
}

export interface CleanupResult {
  expired: number
  locksReleased: number
  auditDeleted: number
  loginHistoryDeleted: number
  orphansRemoved: number
}

export async function runCleanup(d: CleanupDeps): Promise<CleanupResult> {
  const expired = await endMissedSessions(d)
  return {
    expired,
    locksReleased: await releaseLocksOfEndedSessions(d),
    auditDeleted: await deleteOlderThan(d, 'audit_events', d.retention.auditDays),
    loginHistoryDeleted: await deleteOlderThan(d, 'login_attempts', d.retention.loginHistoryDays),
    orphansRemoved: await removeOrphans(d),
  }
}

/** Active sessions past their lifetime or idle timeout, judged by the hot last activity when Redis has it. */
async function endMissedSessions(d: CleanupDeps): Promise<number> {
  const s = await d.settings.get()
  const timeoutMs = s.idleTimeoutSeconds * 1000
  let after = '00000000-0000-0000-0000-000000000000'
  let ended = 0
  for (;;) {
    const rows = await d.sql`
      select id, expires_at, last_activity from sessions
      where status = 'active' and id > ${after}
        and (expires_at <= now() or last_activity <= now() - make_interval(secs => ${s.idleTimeoutSeconds}))
      order by id limit ${d.batchSize}`
    if (rows.length === 0) return ended
    after = rows.at(-1)!.id as string
    const hot = await d.store.presenceOf(rows.map((r) => r.id as string))
    const now = Date.now()
    const lifetime: string[] = []
    const idle: string[] = []
    for (const r of rows) {
      const id = r.id as string
      const last = Math.max((r.last_activity as Date).getTime(), hot.get(id)?.lastActivity ?? 0)
      if (now >= (r.expires_at as Date).getTime()) lifetime.push(id)
      else if (now - last >= timeoutMs) idle.push(id)
    }
    ended += (await d.sessions.end(lifetime, 'lifetime')).length
    ended += (await d.sessions.end(idle, 'idle_timeout')).length
    if (rows.length < d.batchSize) return ended
  }
}

/**
 * Locks still held by sessions that ended over a minute ago: their session-ended job never
 * ran (the session ended while Redis was away, or the job failed for good). Released and
 * announced here; a younger ending is left to its own job.
 */
async function releaseLocksOfEndedSessions(d: CleanupDeps): Promise<number> {
  const rows = await d.sql`
    select distinct l.session_id, s.end_reason from locks l join sessions s on s.id = l.session_id
    where s.status = 'ended' and s.ended_at < now() - interval '1 minute' limit ${d.batchSize}`
  let released = 0
  for (const r of rows) {
    const sessionId = r.session_id as string
    const reason = (r.end_reason as string | null) ?? 'ended'
    const resources = await d.locks.releaseAllOf(sessionId, reason)
    if (resources.length > 0) await d.locks.announceReleased(sessionId, resources, reason)
    released += resources.length
  }
  return released
}

async function deleteOlderThan(d: CleanupDeps, table: 'audit_events' | 'login_attempts', days: number): Promise<number> {
  let deleted = 0
  for (;;) {
    const rows = await d.sql`
      delete from ${d.sql(table)} where id in (
        select id from ${d.sql(table)} where at < now() - make_interval(days => ${days}) order by id limit ${d.batchSize})
      returning id`
    deleted += rows.length
    if (rows.length < d.batchSize) return deleted
  }
}

/** Deadline-list and dirty-set members of sessions that are no longer active. */
async function removeOrphans(d: CleanupDeps): Promise<number> {
  const k = d.keys
  let removed = 0
  for (const key of [k.dueActive, k.dueIdle, k.dueWarned, k.dueLifetime, k.dirtyActivity]) {
    const isSet = key === k.dirtyActivity
    let cursor = '0'
    do {
      const [next, flat] = isSet ? await d.redis.sscan(key, cursor, 'COUNT', d.batchSize) : await d.redis.zscan(key, cursor, 'COUNT', d.batchSize)
      cursor = next
      const ids = isSet ? flat : flat.filter((_, i) => i % 2 === 0)
      const valid = ids.filter((id) => /^[0-9a-f-]{36}$/.test(id))
      const live = new Set(
        valid.length === 0
          ? []
          : (await d.sql`select id from sessions where id = any(${d.sql.array(valid)}::uuid[]) and status = 'active'`).map((r) => r.id as string),
      )
      const orphans = ids.filter((id) => !live.has(id))
      if (orphans.length > 0) {
        removed += isSet ? await d.redis.srem(key, ...orphans) : await d.redis.zrem(key, ...orphans)
        if (!isSet) await d.store.forgetPresence(orphans.filter((id) => valid.includes(id)))
      }
    } while (cursor !== '0')
  }
  return removed
}
