// The cleanup job: ends sessions whose deadline passed while no sweep saw them (workers
// down, Redis lost its deadline lists), applies the retention of audit events, login
// history and ended sessions' uploads, and removes Redis entries that no live session owns.
import type { Redis } from 'ioredis'
import type { Audit } from '../audit/service.js'
import type { LoginHistory } from '../auth/login-history.js'
import type { SessionSlotKeys } from '../sessions/keys.js'
import { type ExpiryReason, expiryReason } from '../sessions/deadlines.js'
import type { SessionDetails } from '../sessions/detail.js'
import type { Sessions } from '../sessions/service.js'
import type { SessionEndings } from '../sessions/endings.js'
import type { SettingsService } from '../settings/service.js'
import type { Uploads } from '../uploads/service.js'
import type { LockReleaser } from './session-ended.js'

export interface CleanupDeps {
  locks: LockReleaser
  redis: Redis
  keys: SessionSlotKeys
  sessions: Sessions
  sessionDetails: Pick<SessionDetails, 'pastDeadline' | 'endedHoldingLocks' | 'activeAmong'>
  audit: Pick<Audit, 'purgeBatch'>
  loginHistory: Pick<LoginHistory, 'purgeBatch'>
  endings: Pick<SessionEndings, 'presenceOf' | 'forget'>
  settings: SettingsService
  batchSize: number
  retention: { auditDays: number; loginHistoryDays: number; uploadDays: number }
  uploads: Pick<Uploads, 'purgeEnded'>
}

export interface CleanupResult {
  expired: number
  locksReleased: number
  auditDeleted: number
  loginHistoryDeleted: number
  orphansRemoved: number
  uploadsRemoved: number
}

export async function runCleanup(d: CleanupDeps): Promise<CleanupResult> {
  const expired = await endMissedSessions(d)
  return {
    expired,
    locksReleased: await releaseLocksOfEndedSessions(d),
    auditDeleted: await inBatches(d.batchSize, (limit) => d.audit.purgeBatch(d.retention.auditDays, limit)),
    loginHistoryDeleted: await inBatches(d.batchSize, (limit) => d.loginHistory.purgeBatch(d.retention.loginHistoryDays, limit)),
    orphansRemoved: await removeOrphans(d),
    uploadsRemoved: await d.uploads.purgeEnded(d.retention.uploadDays, d.batchSize),
  }
}

/**
 * Active sessions past their lifetime or idle timeout, judged by the hot last activity when
 * Redis has it; the deadline that passed first gives the reason, as everywhere else.
 */
async function endMissedSessions(d: CleanupDeps): Promise<number> {
  const s = await d.settings.get()
  const timeoutMs = s.idleTimeoutSeconds * 1000
  let after: string | undefined
  let ended = 0
  for (;;) {
    const rows = await d.sessionDetails.pastDeadline(s.idleTimeoutSeconds, d.batchSize, after)
    if (rows.length === 0) return ended
    after = rows.at(-1)!.id
    const hot = await d.endings.presenceOf(rows.map((r) => r.id))
    const now = Date.now()
    const over: Record<ExpiryReason, string[]> = { lifetime: [], idle_timeout: [] }
    for (const r of rows) {
      const lastActivity = Math.max(r.lastActivity.getTime(), hot.get(r.id)?.lastActivity ?? 0)
      const reason = expiryReason({ expiresAt: r.expiresAt.getTime(), lastActivity }, timeoutMs, now)
      if (reason) over[reason].push(r.id)
    }
    ended += (await d.sessions.end(over.lifetime, 'lifetime')).length
    ended += (await d.sessions.end(over.idle_timeout, 'idle_timeout')).length
    if (rows.length < d.batchSize) return ended
  }
}

/**
 * Locks still held by sessions that ended over a minute ago: their session-ended job could
 * not release them (it failed for good, or was never queued). Released and announced here,
 * each release once even if a retried job overlaps; a younger ending is left to its own job.
 */
async function releaseLocksOfEndedSessions(d: CleanupDeps): Promise<number> {
  let after: string | undefined
  let released = 0
  for (;;) {
    const rows = await d.sessionDetails.endedHoldingLocks(d.batchSize, after)
    for (const r of rows) {
      const release = await d.locks.releaseAllOf(r.sessionId, r.endReason ?? 'ended')
      if (!release) continue
      await d.locks.announceRelease(release)
      released += release.resources.length
    }
    if (rows.length < d.batchSize) return released
    after = rows.at(-1)!.sessionId
  }
}

/** Runs a retention step (delete up to `limit` of the oldest, say how many) until a batch comes back short. */
async function inBatches(batchSize: number, deleteBatch: (limit: number) => Promise<number>): Promise<number> {
  let deleted = 0
  for (;;) {
    const n = await deleteBatch(batchSize)
    deleted += n
    if (n < batchSize) return deleted
  }
}

/** Deadline-list and dirty-set members of sessions that are no longer active. */
async function removeOrphans(d: CleanupDeps): Promise<number> {
  const k = d.keys
  let removed = 0
  for (const shard of k.deadlineShards) for (const key of [...shard.lists, shard.dirty]) {
    const isSet = key === shard.dirty
    let cursor = '0'
    do {
      const [next, flat] = isSet ? await d.redis.sscan(key, cursor, 'COUNT', d.batchSize) : await d.redis.zscan(key, cursor, 'COUNT', d.batchSize)
      cursor = next
      const ids = isSet ? flat : flat.filter((_, i) => i % 2 === 0)
      const valid = ids.filter((id) => /^[0-9a-f-]{36}$/.test(id))
      const live = await d.sessionDetails.activeAmong(valid)
      const orphans = ids.filter((id) => !live.has(id))
      if (orphans.length > 0) {
        removed += isSet ? await d.redis.srem(key, ...orphans) : await d.redis.zrem(key, ...orphans)
        if (!isSet) await d.endings.forget(orphans.filter((id) => valid.includes(id)))
      }
    } while (cursor !== '0')
  }
  return removed
}
