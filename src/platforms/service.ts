// Platform connections of a user, and switching the active one of a session.
import { and, asc, eq, sql } from 'drizzle-orm'
import { platforms, sessions } from '../../db/schema.js'
import type { Db } from '../infra/db.js'
import { AppError } from '../infra/errors.js'
import type { EventBus } from '../infra/bus.js'
import type { Audit } from '../audit/service.js'
import { endReasonOf, sessionEnded, unauthenticated } from '../sessions/errors.js'
import type { StateCache, StateChange } from '../sessions/state-cache.js'
import { PlatformEventOutbox } from './outbox.js'
import { runSwitch } from './switch.js'
import { SERVER_MESSAGES } from '../realtime/protocol.js'

export interface Platform {
  id: number
  name: string
  type: 'pixelfed' | 'mastodon' | 'other'
  instanceUrl: string
  isDefault: boolean
}

export const platformNotFound = () => new AppError(404, 'PLATFORM_NOT_FOUND', 'No such platform connection on your account.')

const columns = { id: platforms.id, name: platforms.name, type: platforms.type, instanceUrl: platforms.instanceUrl, isDefault: platforms.isDefault }

export class Platforms {
  private readonly outbox: PlatformEventOutbox

  constructor(
    private readonly db: Db,
    bus: EventBus,
    private readonly audit: Audit,
    /** Cached session states (session_state): every write here that a session's state shows goes through it. */
    private readonly states: StateCache,
  ) {
    this.outbox = new PlatformEventOutbox({ db, bus })
  }

  async list(userId: number): Promise<Platform[]> {
    return this.db.select(columns).from(platforms).where(eq(platforms.userId, userId)).orderBy(asc(platforms.id))
  }

  async find(userId: number, platformId: number): Promise<(Platform & { active: boolean }) | null> {
    const [row] = await this.db
      .select({ ...columns, active: platforms.active })
      .from(platforms)
      .where(and(eq(platforms.userId, userId), eq(platforms.id, platformId)))
    return row ?? null
  }

  async defaultOf(userId: number): Promise<number | null> {
    const [row] = await this.db
      .select({ id: platforms.id })
      .from(platforms)
      .where(and(eq(platforms.userId, userId), eq(platforms.isDefault, true), eq(platforms.active, true)))
    return row?.id ?? null
  }

  async create(userId: number, input: { name: string; type: Platform['type']; instanceUrl: string; isDefault?: boolean }): Promise<Platform> {
    // A new default takes isDefault from the old one, which a session may have active.
    const change = this.states.begin(userId)
    try {
      await change
      return await this.createIn(userId, input)
    } finally {
      await this.states.end(change)
    }
  }

  private createIn(userId: number, input: { name: string; type: Platform['type']; instanceUrl: string; isDefault?: boolean }): Promise<Platform> {
    return this.db.transaction(async (tx) => {
      // The first connection becomes the default; a new default replaces the old one.
      const count = await tx.$count(platforms, eq(platforms.userId, userId))
      const isDefault = input.isDefault ?? count === 0
      if (isDefault) {
        await tx
          .update(platforms)
          .set({ isDefault: false })
          .where(and(eq(platforms.userId, userId), eq(platforms.isDefault, true)))
      }
      const [row] = await tx
        .insert(platforms)
        .values({ userId, name: input.name, type: input.type, instanceUrl: input.instanceUrl, isDefault })
        .returning(columns)
      return row!
    })
  }

  /** Deletes a connection; sessions that had it active fall back to none and are told. */
  async remove(userId: number, platformId: number, byTabId: string | null): Promise<void> {
    const change = this.states.begin(userId)
    try {
      await change
      await this.removeIn(userId, platformId, byTabId)
    } finally {
      await this.states.end(change)
    }
  }

  private async removeIn(userId: number, platformId: number, byTabId: string | null): Promise<void> {
    const sessionIds = await this.db.transaction(async (tx) => {
      const had = await tx
        .update(sessions)
        .set({ activePlatformId: null, version: sql`${sessions.version} + 1` })
        .where(and(eq(sessions.activePlatformId, platformId), eq(sessions.userId, userId), eq(sessions.status, 'active')))
        .returning({ id: sessions.id, version: sessions.version, expiresAt: sessions.expiresAt })
      const [deleted] = await tx
        .delete(platforms)
        .where(and(eq(platforms.userId, userId), eq(platforms.id, platformId)))
        .returning(columns)
      if (!deleted) throw platformNotFound()
      await this.audit.recordIn(tx, { type: 'platform.deleted', userId, data: { platformId, name: deleted.name, sessions: had.length } })
      for (const s of had) {
        const event = { type: SERVER_MESSAGES.platformSwitched, platform: null, previousPlatform: deleted, version: s.version, byTabId }
        await this.outbox.add(tx, s.id, s.version, event, s.expiresAt)
      }
      return had.map((s) => s.id)
    })
    await this.outbox.publishPending(sessionIds)
  }

  /**
   * Makes `platformId` the session's active platform. The row lock makes concurrent
   * switches of one session take turns; `expectedVersion` turns a stale switch into 409.
   */
  async switchTo(
    session: { id: string; userId: number; expiresAt: number },
    platformId: number,
    opts: { expectedVersion?: number; byTabId: string | null },
  ): Promise<{ platform: Platform; version: number; changed: boolean }> {
    // Marked before the switch commits (its one statement waits for the mark); taken back once tabs have heard.
    const change = this.states.begin(session.userId)
    let result: Awaited<ReturnType<Platforms['switchIn']>>
    try {
      result = await this.switchIn(session, platformId, opts, change)
    } finally {
      await this.states.end(change)
    }
    return { platform: result.platform, version: result.version, changed: result.changed }
  }

  private async switchIn(
    session: { id: string; userId: number; expiresAt: number },
    platformId: number,
    opts: { expectedVersion?: number; byTabId: string | null },
    change: StateChange,
  ): Promise<{ platform: Platform; version: number; changed: boolean }> {
    await change
    // One statement, no transaction (switch.ts); the refusals below are decided from what it found, in the order they always were.
    const r = await runSwitch(this.db, {
      sessionId: session.id,
      userId: session.userId,
      platformId,
      expectedVersion: opts.expectedVersion ?? null,
      byTabId: opts.byTabId,
      keepUntil: new Date(session.expiresAt),
      audit: this.audit.enabled,
    })
    const target = platformOf(r.targetId, r.targetName, r.targetType, r.targetInstanceUrl, r.targetIsDefault)
    if (!target) throw platformNotFound()
    if (!r.targetActive) throw new AppError(400, 'PLATFORM_INACTIVE', `The connection ${target.name} is switched off; turn it on before switching to it.`)
    // The session ended while this request was on its way: refuse with the reason it ended for.
    if (r.status === null || r.version === null) throw unauthenticated()
    if (r.status !== 'active') throw sessionEnded(endReasonOf(r.endReason) ?? 'logout', r.endNote)
    if (opts.expectedVersion !== undefined && opts.expectedVersion !== r.version) {
      const current = platformOf(r.previousId, r.previousName, r.previousType, r.previousInstanceUrl, r.previousIsDefault)
      throw new AppError(409, 'VERSION_CONFLICT', 'The session changed meanwhile (another tab switched); here is its current state.', {
        current: { platform: current, version: r.version },
      })
    }
    // A switch to the platform already active publishes nothing of its own, but what an
    // earlier switch committed without publishing (its caller got an error) goes out now.
    await this.outbox.publishReturned(r.pending, session.id)
    return r.newVersion === null ? { platform: target, version: r.version, changed: false } : { platform: target, version: r.newVersion, changed: true }
  }
}

/** A platform from the statement's columns, or null when it found none. */
function platformOf(
  id: number | null,
  name: string | null,
  type: Platform['type'] | null,
  instanceUrl: string | null,
  isDefault: boolean | null,
): Platform | null {
  return id === null || name === null || type === null || instanceUrl === null || isDefault === null ? null : { id, name, type, instanceUrl, isDefault }
}
