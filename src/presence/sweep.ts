// The idle sweep: one tick a second across the cluster (a BullMQ job scheduler). Each tick
// reads only what is due from the deadline lists (sorted sets), so its cost follows the
// number of due sessions, not the number of sessions.
import type { Redis } from 'ioredis'
import type { Audit } from '../audit/service.js'
import type { RedisKeys } from '../infra/keys.js'
import type { EventBus } from '../realtime/bus.js'
import type { EndReason } from '../sessions/errors.js'
import type { Sessions } from '../sessions/service.js'
import type { SettingsService } from '../settings/service.js'

const BATCH = 1000

// Moves one member between deadline lists only if it is still due there (input may have
// moved it on since the list was read). KEYS from, to; ARGV id, due-at-or-before. Returns its score or false.
const moveIfDueLua = `
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score == false or tonumber(score) > tonumber(ARGV[2]) then return false end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], score, ARGV[1])
return score
`

interface MoveCommand {
  tesseraMoveIfDue(from: string, to: string, id: string, dueBy: number): Promise<string | null>
}

export interface SweepDeps {
  audit: Pick<Audit, 'record'>
  redis: Redis
  keys: RedisKeys
  bus: EventBus
  sessions: Sessions
  settings: SettingsService
}

export interface SweepResult {
  idled: number
  warned: number
  expired: number
  /** How late, at most, this tick ended a session after its deadline (ms). */
  lagMs: number
}

export class IdleSweep {
  constructor(private readonly d: SweepDeps) {
    d.redis.defineCommand('tesseraMoveIfDue', { numberOfKeys: 2, lua: moveIfDueLua })
  }

  async tick(now = Date.now()): Promise<SweepResult> {
    const s = await this.d.settings.get()
    const idleAfter = s.idleAfterSeconds * 1000
    const timeout = s.idleTimeoutSeconds * 1000
    const warning = s.idleWarningSeconds * 1000
    const { keys } = this.d
    const result: SweepResult = { idled: 0, warned: 0, expired: 0, lagMs: 0 }

    for (const id of await this.due(keys.dueActive, now - idleAfter)) {
      const last = await this.move(keys.dueActive, keys.dueIdle, id, now - idleAfter)
      if (last === null) continue
      result.idled++
      await this.publish(id, { type: 'session.idle', lastActivity: new Date(last).toISOString() })
    }
    if (warning > 0) {
      for (const id of await this.due(keys.dueIdle, now - (timeout - warning))) {
        const last = await this.move(keys.dueIdle, keys.dueWarned, id, now - (timeout - warning))
        if (last === null) continue
        result.warned++
        const expiresAt = last + timeout
        await this.publish(id, { type: 'session.idle_warning', expiresAt: new Date(expiresAt).toISOString(), secondsLeft: Math.max(0, Math.round((expiresAt - now) / 1000)) })
      }
    }
    for (const key of [keys.dueWarned, keys.dueIdle]) {
      const due = await this.dueWithScores(key, now - timeout)
      result.expired += await this.end(key, due, 'idle_timeout', (last) => last + timeout, now, result)
    }
    const lifetimeOver = await this.dueWithScores(keys.dueLifetime, now)
    result.expired += await this.end(keys.dueLifetime, lifetimeOver, 'lifetime', (expiresAt) => expiresAt, now, result)
    return result
  }

  private async end(key: string, due: [string, number][], reason: EndReason, deadline: (score: number) => number, now: number, result: SweepResult) {
    if (due.length === 0) return 0
    const ended = await this.d.sessions.end(
      due.map(([id]) => id),
      reason,
    )
    // Members whose session had already ended elsewhere leave the list too.
    await this.d.redis.zrem(key, ...due.map(([id]) => id))
    const endedIds = new Set(ended.map((e) => e.id))
    for (const [id, score] of due) if (endedIds.has(id)) result.lagMs = Math.max(result.lagMs, now - deadline(score))
    return ended.length
  }

  private due(key: string, dueBy: number): Promise<string[]> {
    return this.d.redis.zrangebyscore(key, '-inf', dueBy, 'LIMIT', 0, BATCH)
  }

  private async dueWithScores(key: string, dueBy: number): Promise<[string, number][]> {
    const flat = await this.d.redis.zrangebyscore(key, '-inf', dueBy, 'WITHSCORES', 'LIMIT', 0, BATCH)
    const out: [string, number][] = []
    for (let i = 0; i < flat.length; i += 2) out.push([flat[i]!, Number(flat[i + 1])])
    return out
  }

  private async move(from: string, to: string, id: string, dueBy: number): Promise<number | null> {
    const score = await (this.d.redis as unknown as MoveCommand).tesseraMoveIfDue(from, to, id, dueBy)
    return score === null ? null : Number(score)
  }

  private async publish(sessionId: string, event: { type: string } & Record<string, unknown>) {
    const record = await this.d.sessions.byId(sessionId)
    if (record?.status !== 'active') return
    await this.d.bus.publishSessionEvent(sessionId, event, new Date(record.expiresAt))
    if (event.type === 'session.idle') await this.d.audit.record({ type: 'session.idle', userId: record.userId, sessionId })
  }
}
