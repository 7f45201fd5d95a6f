// The session-ended job: the follow-up of every ending, whatever path ended the session.
// Each step is idempotent, so a retry after a crash (R4) repeats nothing that happened.
import type { Redis } from 'ioredis'
import type { Pool } from '../infra/db.js'
import type { RedisKeys } from '../infra/keys.js'
import type { SessionStore } from '../sessions/store.js'
import type { SessionEndedJob } from './queues.js'

/** What the job needs from the locks feature. */
export interface LockReleaser {
  /** Deletes the session's locks and records the release, in one transaction; [] the second time. */
  releaseAllOf(sessionId: string, reason: string): Promise<string[]>
  /** The resources of the release recorded for the session (for a retry to announce again). */
  announcedReleases(sessionId: string): Promise<string[]>
  announceReleased(sessionId: string, resources: string[], reason: string): Promise<void>
}

export interface SessionEndedDeps {
  sql: Pool
  redis: Redis
  keys: RedisKeys
  store: SessionStore
  locks: LockReleaser
  /** Test hook: runs between the lock release and its announcement. */
  afterRelease?: (job: SessionEndedJob) => Promise<void>
}

export async function processSessionEnded(d: SessionEndedDeps, job: SessionEndedJob, attemptsMade: number): Promise<{ released: string[] }> {
  let released = await d.locks.releaseAllOf(job.sessionId, job.reason)
  await d.afterRelease?.(job)
  // A retry finds nothing left to release: if an earlier attempt released locks but died
  // before announcing them, announce what it recorded (tabs treat the event as idempotent).
  if (released.length === 0 && attemptsMade > 0) released = await d.locks.announcedReleases(job.sessionId)
  if (released.length > 0) await d.locks.announceReleased(job.sessionId, released, job.reason)

  const last = await d.store.hotLastActivity(job.sessionId)
  if (last !== null) {
    await d.sql`update sessions set last_activity = greatest(last_activity, ${new Date(last)}) where id = ${job.sessionId}`
  }
  await d.store.forgetPresence([job.sessionId])
  return { released }
}
