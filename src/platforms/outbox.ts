// The events of platform changes (a switch, a deleted connection) go through an outbox: each
// is written in the change's transaction and published after its commit, then deleted. A
// change can commit and its publish still fail (Redis away, the process gone): its row stays
// and is published by the session's next change (a retried switch included) or by the
// repair pass of the sweep job, so every tab hears of every committed change.
//
// Publishing a row twice is harmless: an event carries the state version it announces, and
// the publish script drops one not newer than the last published (so a late event never
// steps a tab back either).
import { asc, inArray, lt, sql } from 'drizzle-orm'
import { sessionEventOutbox } from '../../db/schema.js'
import type { Db, Queryable } from '../infra/db.js'
import type { EventBus, SessionEvent } from '../infra/bus.js'

/** A row this old is the repair pass's: younger ones may still be on their way. */
export const REPAIR_AFTER_SECONDS = 5
const REPAIR_BATCH = 100

interface Pending {
  id: number
  sessionId: string
  version: number
  event: SessionEvent
  keepUntil: Date
}

export class PlatformEventOutbox {
  constructor(private readonly d: { db: Db; bus: Pick<EventBus, 'publishSessionEvent'> }) {}

  /** Records `event` (announcing state `version`) with the transaction `tx`. */
  async add(tx: Queryable, sessionId: string, version: number, event: SessionEvent, keepUntil: Date): Promise<void> {
    await tx.insert(sessionEventOutbox).values({ sessionId, version, event, keepUntil })
  }

  /** Publishes every event still pending for these sessions, oldest first; call it after the commit. */
  async publishPending(sessionIds: string[]): Promise<void> {
    if (sessionIds.length === 0) return
    // Prepared, as after every switch: postgres.js describes it once per connection, not before every run.
    const rows = await this.pending()
      .where(inArray(sessionEventOutbox.sessionId, sessionIds))
      .orderBy(asc(sessionEventOutbox.id))
      .prepare('outbox_pending')
      .execute()
    await this.publish(rows)
  }

  /** The repair pass: publishes what has been pending for a while; returns how many. */
  async repair(): Promise<number> {
    const rows = await this.pending()
      .where(lt(sessionEventOutbox.createdAt, sql`now() - make_interval(secs => ${REPAIR_AFTER_SECONDS})`))
      .orderBy(asc(sessionEventOutbox.id))
      .limit(REPAIR_BATCH)
    await this.publish(rows)
    return rows.length
  }

  private pending() {
    const o = sessionEventOutbox
    return this.d.db.select({ id: o.id, sessionId: o.sessionId, version: o.version, event: o.event, keepUntil: o.keepUntil }).from(o)
  }

  /** Publishes rows a change's own statement returned (runSwitch), as publishPending would have read them. */
  publishReturned(rows: { id: number; version: number; event: SessionEvent; keepUntil: string }[], sessionId: string): Promise<void> {
    return this.publish(rows.map((r) => ({ ...r, sessionId, keepUntil: new Date(r.keepUntil) })))
  }

  /** In order; what went out is deleted even when a later one fails. */
  private async publish(pending: Pending[]): Promise<void> {
    const published: number[] = []
    try {
      for (const p of pending) {
        await this.d.bus.publishSessionEvent(p.sessionId, p.event, p.keepUntil, p.version)
        published.push(p.id)
      }
    } finally {
      if (published.length > 0) await this.d.db.delete(sessionEventOutbox).where(inArray(sessionEventOutbox.id, published)).prepare('outbox_published').execute()
    }
  }
}
