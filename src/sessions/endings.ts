// The follow-up of endings as the jobs see it (jobs/session-ended.ts, jobs/cleanup.ts): an
// ended session's record, its last hot activity kept, its hot state forgotten, and the
// mark that the follow-up is done. The jobs call this service, never the store.
import type { EndReason } from './errors.js'
import type { EndedSession, Presence } from './records.js'
import type { SessionStore } from './store.js'

export class SessionEndings {
  constructor(private readonly store: SessionStore) {}

  /** The ended session `sessionId`, or null when it is not one. */
  ended(sessionId: string): Promise<EndedSession | null> {
    return this.store.findEnded(sessionId)
  }

  /** Writes the last activity Redis still holds to PostgreSQL (never moving it back). */
  async keepLastActivity(sessionId: string): Promise<void> {
    const last = await this.store.hotLastActivity(sessionId)
    if (last !== null) await this.store.saveFinalLastActivity(sessionId, last)
  }

  /** Removes the sessions' hot presence and their places on the deadline lists. */
  forget(sessionIds: string[]): Promise<void> {
    return this.store.forgetPresence(sessionIds)
  }

  /** Marks the follow-up of the session's ending done. */
  finalized(sessionId: string): Promise<void> {
    return this.store.markFinalized(sessionId)
  }

  /** Endings older than `olderThanSeconds` whose follow-up is not done, oldest first. */
  unfinished(olderThanSeconds: number, limit: number): Promise<{ id: string; userId: number; reason: EndReason; endedAt: number }[]> {
    return this.store.unfinalized(olderThanSeconds, limit)
  }

  /** The hot presence of these sessions, as Redis holds it. */
  presenceOf(sessionIds: string[]): Promise<Map<string, Presence>> {
    return this.store.presenceOf(sessionIds)
  }
}
