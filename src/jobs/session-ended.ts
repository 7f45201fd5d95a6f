// The session-ended job: the follow-up of every ending, whatever path ended the session,
// and the repair of endings whose follow-up was cut short. Each step is idempotent, so a
// retry after a crash (R4) repeats nothing that others could notice; the last step marks
// the session finalized.
import type { LockRelease } from '../locks/service.js'
import type { Sessions } from '../sessions/service.js'
import type { SessionEndings } from '../sessions/endings.js'
import type { Queues, SessionEndedJob } from '../infra/queues.js'

/** What the job needs from the locks feature. */
export interface LockReleaser {
  /** Deletes the session's locks and records the release, in one transaction; null when it held none. */
  releaseAllOf(sessionId: string, reason: string): Promise<LockRelease | null>
  /** Every recorded release of the session's locks. */
  releasesOf(sessionId: string): Promise<LockRelease[]>
  /** Announces one release, once however often it is called; true when this call did. */
  announceRelease(release: LockRelease): Promise<boolean>
}

export interface SessionEndedDeps {
  endings: SessionEndings
  sessions: Pick<Sessions, 'announce' | 'settled'>
  locks: LockReleaser
  /** Test hook: runs between the lock release and its announcement. */
  afterRelease?: (job: SessionEndedJob) => Promise<void>
}

export interface SessionEndedResult {
  /** Resources whose locks this run deleted. */
  released: string[]
  /** Resources whose release this run announced (an earlier attempt's too, if it died before). */
  announced: string[]
  /** False when there was nothing to do: not an ended session, or finalized before. */
  finalized: boolean
}

export async function processSessionEnded(d: SessionEndedDeps, job: SessionEndedJob): Promise<SessionEndedResult> {
  const ended = await d.endings.ended(job.sessionId)
  if (!ended || ended.finalizedAt !== null) return { released: [], announced: [], finalized: false }
  const id = ended.id
  // The ending path may have died before any of this: terminal event, notices, caches.
  await d.sessions.announce([ended])
  await d.endings.keepLastActivity(id)
  await d.endings.forget([id])

  // The ending released the session's locks; what is left was taken while it waited.
  const release = await d.locks.releaseAllOf(id, ended.reason)
  await d.afterRelease?.(job)
  const announced: string[] = []
  const releases = await d.locks.releasesOf(id)
  for (const r of releases) if (await d.locks.announceRelease(r)) announced.push(...r.resources)
  await d.endings.finalized(id)
  await d.sessions.settled(id, releases.map((r) => r.id))
  return { released: release?.resources ?? [], announced, finalized: true }
}

/** An ending this old without its follow-up done is repaired: its job was lost, failed for good, or never queued. */
export const REPAIR_AFTER_SECONDS = 5
const REPAIR_BATCH = 100

/** Re-queues the session-ended jobs of endings left unfinished; returns how many it queued. */
export async function repairEndings(d: { endings: Pick<SessionEndings, 'unfinished'>; queues: Pick<Queues, 'requeueEnded'> }): Promise<number> {
  const stuck = await d.endings.unfinished(REPAIR_AFTER_SECONDS, REPAIR_BATCH)
  return stuck.length === 0 ? 0 : d.queues.requeueEnded(stuck)
}
