// Platform connections of a user, and switching the active one of a session.
import type { Pool, Sql } from '../infra/db.js'
import { AppError } from '../infra/errors.js'
import type { EventBus } from '../infra/bus.js'
import type { Audit } from '../audit/service.js'
import { type EndReason, sessionEnded, unauthenticated } from '../sessions/errors.js'
import type { StateCache, StateChange } from '../sessions/state-cache.js'
import { PlatformEventOutbox } from './outbox.js'
import { SERVER_MESSAGES } from '../realtime/protocol.js'

export interface Platform {
  id: number
  name: string
  type: 'pixelfed' | 'mastodon' | 'other'
  instanceUrl: string
  isDefault: boolean
}

export const platformNotFound = () => new AppError(404, 'PLATFORM_NOT_FOUND', 'No such platform connection on your account.')

const columns = (sql: Sql) => sql`id, name, type, instance_url, is_default, active`

function toPlatform(r: Record<string, unknown>): Platform {
  return {
    id: r.id as number,
    name: r.name as string,
    type: r.type as Platform['type'],
    instanceUrl: r.instance_url as string,
    isDefault: r.is_default as boolean,
  }
}

export class Platforms {
  private readonly outbox: PlatformEventOutbox

  constructor(
    private readonly sql: Pool,
    bus: EventBus,
    private readonly audit: Audit,
    /** Cached session states (session_state): every write here that a session's state shows goes through it. */
    private readonly states: StateCache,
  ) {
    this.outbox = new PlatformEventOutbox({ sql, bus })
  }

  async list(userId: number): Promise<Platform[]> {
    const rows = await this.sql`select ${columns(this.sql)} from platforms where user_id = ${userId} order by id`
    return rows.map(toPlatform)
  }

  async find(userId: number, platformId: number, sql: Sql = this.sql): Promise<(Platform & { active: boolean }) | null> {
    const [row] = await sql`select ${columns(sql)} from platforms where user_id = ${userId} and id = ${platformId}`
    return row ? { ...toPlatform(row), active: row.active as boolean } : null
  }

  async defaultOf(userId: number): Promise<number | null> {
    const [row] = await this.sql`select id from platforms where user_id = ${userId} and is_default and active`
    return (row?.id as number | undefined) ?? null
  }

  async create(userId: number, input: { name: string; type: string; instanceUrl: string; isDefault?: boolean }): Promise<Platform> {
    // A new default takes isDefault from the old one, which a session may have active.
    const change = this.states.begin(userId)
    try {
      await change
      return await this.createIn(userId, input)
    } finally {
      await this.states.end(change)
    }
  }

  private createIn(userId: number, input: { name: string; type: string; instanceUrl: string; isDefault?: boolean }): Promise<Platform> {
    return this.sql.begin(async (tx) => {
      // The first connection becomes the default; a new default replaces the old one.
      const [{ count }] = (await tx`select count(*)::int as count from platforms where user_id = ${userId}`) as unknown as [{ count: number }]
      const isDefault = input.isDefault ?? count === 0
      if (isDefault) await tx`update platforms set is_default = false where user_id = ${userId} and is_default`
      const [row] = await tx`insert into platforms (user_id, name, type, instance_url, is_default)
        values (${userId}, ${input.name}, ${input.type}, ${input.instanceUrl}, ${isDefault})
        returning ${columns(tx)}`
      return toPlatform(row!)
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
    const sessionIds = await this.sql.begin(async (tx) => {
      const sessions = await tx`update sessions set active_platform_id = null, version = version + 1
        where active_platform_id = ${platformId} and user_id = ${userId} and status = 'active'
        returning id, version, expires_at`
      const [row] = await tx`delete from platforms where user_id = ${userId} and id = ${platformId} returning ${columns(tx)}`
      if (!row) throw platformNotFound()
      const deleted = toPlatform(row)
      await this.audit.recordIn(tx, { type: 'platform.deleted', userId, data: { platformId, name: deleted.name, sessions: sessions.length } })
      for (const s of sessions) {
        const version = s.version as number
        await this.outbox.add(tx, s.id as string, version, { type: SERVER_MESSAGES.platformSwitched, platform: null, previousPlatform: deleted, version, byTabId }, s.expires_at as Date)
      }
      return sessions.map((s) => s.id as string)
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
    // Marked before the lookups, side by side with them; taken back once tabs have heard.
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
    const platform = await this.find(session.userId, platformId)
    if (!platform) throw platformNotFound()
    if (!platform.active) throw new AppError(400, 'PLATFORM_INACTIVE', `The connection ${platform.name} is switched off; turn it on before switching to it.`)
    const { active: _a, ...target } = platform
    await change
    const result = await this.sql.begin(async (tx) => {
      const [row] = await tx`select active_platform_id, version, status, end_reason from sessions where id = ${session.id} for update`
      // The session ended while this request was on its way: refuse with the reason it ended for.
      if (!row) throw unauthenticated()
      if (row.status !== 'active') throw sessionEnded((row.end_reason as EndReason | null) ?? 'logout')
      const currentId = (row.active_platform_id as number | null) ?? null
      const version = row.version as number
      if (opts.expectedVersion !== undefined && opts.expectedVersion !== version) {
        // On the transaction's own connection: with every pool connection held by a switch
        // waiting for this row lock, a query on the pool would never get one (deadlock).
        const current = currentId === null ? null : await this.find(session.userId, currentId, tx)
        throw new AppError(409, 'VERSION_CONFLICT', 'The session changed meanwhile (another tab switched); here is its current state.', {
          current: { platform: current && { id: current.id, name: current.name, type: current.type, instanceUrl: current.instanceUrl, isDefault: current.isDefault }, version },
        })
      }
      if (currentId === platformId) return { version, changed: false }
      const [updated] = await tx`update sessions set active_platform_id = ${platformId}, version = version + 1
        where id = ${session.id} returning version`
      const newVersion = updated!.version as number
      const previous = currentId === null ? null : await this.find(session.userId, currentId, tx)
      // With the change or not at all (R3): no switch without its audit event, nor its event.
      await this.audit.recordIn(tx, {
        type: SERVER_MESSAGES.platformSwitched,
        userId: session.userId,
        sessionId: session.id,
        data: { from: currentId, to: platformId, version: newVersion, byTabId: opts.byTabId },
      })
      const event = {
        type: SERVER_MESSAGES.platformSwitched,
        platform: target,
        previousPlatform: previous && { id: previous.id, name: previous.name, type: previous.type, instanceUrl: previous.instanceUrl, isDefault: previous.isDefault },
        version: newVersion,
        byTabId: opts.byTabId,
      }
      await this.outbox.add(tx, session.id, newVersion, event, new Date(session.expiresAt))
      return { version: newVersion, changed: true }
    })
    // A switch to the platform already active publishes nothing of its own, but what an
    // earlier switch committed without publishing (its caller got an error) goes out now.
    await this.outbox.publishPending([session.id])
    return { platform: target, version: result.version, changed: result.changed }
  }
}
