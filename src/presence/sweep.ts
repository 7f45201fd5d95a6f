// The idle sweep: one tick a second across the cluster (a BullMQ job scheduler). Each tick
// reads only what is due from the deadline lists (sorted sets), so its cost follows the
// number of due sessions, not the number of sessions: one Redis round trip when nothing is
// due; otherwise one PostgreSQL query for all due sessions, and publishes sent together.
import { inArray } from 'drizzle-orm'
import type { ClientContext, Redis, Result } from 'ioredis'
import { sessions } from '../../db/schema.js'
import type { Audit } from '../audit/service.js'
import type { Db } from '../infra/db.js'
import { byShard, type DeadlineShard, type SessionSlotKeys } from '../sessions/keys.js'
import { crossSlot } from '../infra/redis.js'
import type { EventBus, SessionEvent } from '../infra/bus.js'
import { type ExpiryReason, expiryReason } from '../sessions/deadlines.js'
import type { Sessions } from '../sessions/service.js'
import type { SettingsService } from '../settings/service.js'
import type { Settings } from '../settings/schemas.js'
import { SERVER_MESSAGES } from '../realtime/protocol.js'

const BATCH = 1000
/** PostgreSQL's clock may run a little ahead of the nodes': a later last activity there within this is not news. */
const CLOCK_SKEW_MS = 1000

// Moves one member between deadline lists (of one shard) only if it is still due there
// (input may have moved it on since the list was read). KEYS from, to; ARGV id,
// due-at-or-before. Returns its score or false.
const moveIfDueLua = `
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score == false or tonumber(score) > tonumber(ARGV[2]) then return false end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], score, ARGV[1])
return score
`

declare module 'ioredis' {
  interface RedisCommander<Context extends ClientContext = { type: 'default' }> {
    /** The member's score when it moved, null when it was no longer due there. */
    tesseraMoveIfDue(from: string, to: string, id: string, dueBy: number): Result<string | null, Context>
  }
}

export interface SweepDeps {
  audit: Pick<Audit, 'record'>
  redis: Redis
  db: Db
  keys: SessionSlotKeys
  bus: Pick<EventBus, 'publishWhileListed'>
  sessions: Pick<Sessions, 'end'>
  settings: Pick<SettingsService, 'get'>
}

export interface SweepResult {
  idled: number
  warned: number
  expired: number
  /** How late, at most, this tick ended a session after its deadline (ms). */
  lagMs: number
}

/** The deadline lists that hold a session by its last activity, in the order a quiet session passes through them. */
type ActivityList = 'active' | 'warnedEarly' | 'idle' | 'warned'

/** When each step is due, in ms after the last input. */
interface Rules {
  idleAfter: number
  timeout: number
  /** When the warning is due (null: no warnings). It may come before idleAfter: then the warning comes first. */
  warnAfter: number | null
}

interface Due {
  id: string
  list: ActivityList
  /** Last activity, as the list holds it. */
  last: number
}

interface Row {
  status: 'active' | 'ended'
  userId: number
  expiresAt: number
  lastActivity: number
}

/** One step of a quiet session: a move between lists and the events it brings. */
interface Step {
  due: Due
  to: ActivityList
  dueBy: number
  idle: boolean
  warn: boolean
}

function rulesOf(s: Settings): Rules {
  const timeout = s.idleTimeoutSeconds * 1000
  return { idleAfter: s.idleAfterSeconds * 1000, timeout, warnAfter: s.idleWarningSeconds > 0 ? timeout - s.idleWarningSeconds * 1000 : null }
}

export class IdleSweep {
  constructor(private readonly d: SweepDeps) {
    d.redis.defineCommand('tesseraMoveIfDue', { numberOfKeys: 2, lua: moveIfDueLua })
  }

  /** A deadline list of the session's shard. */
  private listKey(list: ActivityList, sessionId: string): string {
    return listOf(this.d.keys.deadlines(sessionId), list)
  }

  async tick(now = Date.now()): Promise<SweepResult> {
    const rules = rulesOf(await this.d.settings.get())
    const result: SweepResult = { idled: 0, warned: 0, expired: 0, lagMs: 0 }
    const { activity, lifetime } = await this.readDue(now, rules)
    const byId = new Map(activity.map((a) => [a.id, a]))
    const ids = [...new Set([...byId.keys(), ...lifetime.keys()])]
    if (ids.length === 0) return result

    const rows = await this.rowsOf(ids)
    const hot = await this.hotLastActivity(ids.filter((id) => !byId.has(id)))
    const endings: Record<ExpiryReason, { id: string; deadline: number }[]> = { lifetime: [], idle_timeout: [] }
    const gone: string[] = []
    const steps: Step[] = []
    const pipeline = crossSlot(this.d.redis)
    for (const id of ids) {
      const row = rows.get(id)
      if (row?.status !== 'active') {
        gone.push(id) // ended elsewhere (or unknown): it only leaves the lists
        continue
      }
      const due = byId.get(id)
      const last = Math.max(due?.last ?? hot.get(id) ?? 0, row.lastActivity)
      const reason = expiryReason({ expiresAt: row.expiresAt, lastActivity: last }, rules.timeout, now)
      if (reason) {
        // Past a deadline: it ends now, without idle or warning events first.
        endings[reason].push({ id, deadline: reason === 'lifetime' ? row.expiresAt : last + rules.timeout })
      } else if (!due) {
        pipeline.zadd(this.d.keys.deadlines(id).lifetime, row.expiresAt, id) // the lifetime list was out of date
      } else if (last > due.last + CLOCK_SKEW_MS) {
        // PostgreSQL knows of later input than Redis (which lost it): start again from that.
        for (const list of ['warnedEarly', 'idle', 'warned'] as const) pipeline.zrem(this.listKey(list, id), id)
        pipeline.zadd(this.d.keys.deadlines(id).active, 'GT', last, id)
      } else {
        const step = this.stepOf(due, now, rules)
        if (step) steps.push(step)
      }
    }
    for (const [d, ids] of byShard(this.d.keys, gone)) for (const key of d.lists) pipeline.zrem(key, ...ids)
    await pipeline.exec()

    for (const [reason, due] of Object.entries(endings) as [ExpiryReason, { id: string; deadline: number }[]][]) {
      if (due.length === 0) continue
      const ended = new Set((await this.d.sessions.end(due.map((e) => e.id), reason)).map((e) => e.id))
      result.expired += ended.size
      for (const e of due) if (ended.has(e.id)) result.lagMs = Math.max(result.lagMs, now - e.deadline)
    }
    await this.takeSteps(steps, rows, now, rules, result)
    return result
  }

  /** Every list's due members, of every shard, in one round trip (one per primary on a Cluster). */
  private async readDue(now: number, rules: Rules): Promise<{ activity: Due[]; lifetime: Map<string, number> }> {
    const { idleAfter, timeout, warnAfter } = rules
    const reads: [ActivityList, number][] = [
      // An active session is due for its first step: idle, or an early warning.
      ['active', now - Math.min(idleAfter, warnAfter ?? idleAfter)],
      ['warnedEarly', now - idleAfter],
      ['idle', now - (warnAfter ?? timeout)],
      ['warned', now - timeout],
    ]
    const shards = this.d.keys.deadlineShards
    const pipeline = crossSlot(this.d.redis)
    for (const d of shards) {
      for (const [list, dueBy] of reads) pipeline.zrangebyscore(listOf(d, list), '-inf', dueBy, 'WITHSCORES', 'LIMIT', 0, BATCH)
      pipeline.zrangebyscore(d.lifetime, '-inf', now, 'WITHSCORES', 'LIMIT', 0, BATCH)
    }
    const replies = ((await pipeline.exec()) ?? []).map(([err, flat]) => {
      if (err) throw err
      // Members and scores, alternating (a pipeline's replies come back untyped).
      return Array.isArray(flat) ? flat.filter((v) => typeof v === 'string') : []
    })
    const activity: Due[] = []
    const lifetime = new Map<string, number>()
    const per = reads.length + 1
    shards.forEach((_, s) => {
      reads.forEach(([list], i) => {
        for (const [id, score] of pairs(replies[s * per + i]!)) activity.push({ id, list, last: score })
      })
      for (const [id, at] of pairs(replies[s * per + reads.length]!)) lifetime.set(id, at)
    })
    return { activity, lifetime }
  }

  /** The next step of a quiet session that is not past its timeout, or null when none is due. */
  private stepOf(due: Due, now: number, { idleAfter, warnAfter }: Rules): Step | null {
    const idleDue = due.last <= now - idleAfter
    const warnDue = warnAfter !== null && due.last <= now - warnAfter
    switch (due.list) {
      case 'active':
        if (idleDue) return { due, to: warnDue ? 'warned' : 'idle', dueBy: now - idleAfter, idle: true, warn: warnDue }
        return warnDue ? { due, to: 'warnedEarly', dueBy: now - warnAfter!, idle: false, warn: true } : null
      case 'warnedEarly':
        return idleDue ? { due, to: 'warned', dueBy: now - idleAfter, idle: true, warn: false } : null
      case 'idle':
        return warnDue ? { due, to: 'warned', dueBy: now - warnAfter!, idle: false, warn: true } : null
      case 'warned':
        return null
    }
  }

  /** Moves each session on (unless input moved it first) and tells its tabs, all sessions at once. */
  private async takeSteps(steps: Step[], rows: Map<string, Row>, now: number, rules: Rules, result: SweepResult) {
    const moved = await Promise.all(
      steps.map((s) => this.d.redis.tesseraMoveIfDue(this.listKey(s.due.list, s.due.id), this.listKey(s.to, s.due.id), s.due.id, s.dueBy)),
    )
    const taken = steps.flatMap((s, i) => (moved[i] === null ? [] : [{ ...s, score: moved[i]! }]))
    const idled = taken.filter((s) => s.idle)
    // Audited before the tabs hear it, so the timeline never shows what followed first.
    await this.d.audit.record(...idled.map(({ due }) => ({ type: 'session.idle', userId: rows.get(due.id)!.userId, sessionId: due.id })))
    await Promise.all(
      taken.map(async ({ due, score, idle, warn }) => {
        const keepUntil = new Date(rows.get(due.id)!.expiresAt)
        // Input since the move has taken the session off that list and told the tabs it is active: then nothing is said.
        const listed = { score, presence: this.d.keys.sessionPresence(due.id) }
        for (const event of this.eventsOf(due.last, idle, warn, now, rules)) await this.d.bus.publishWhileListed(due.id, event, keepUntil, listed)
      }),
    )
    result.idled += idled.length
    result.warned += taken.filter((s) => s.warn).length
  }

  private eventsOf(last: number, idle: boolean, warn: boolean, now: number, rules: Rules): SessionEvent[] {
    const events: SessionEvent[] = []
    if (idle) events.push({ type: SERVER_MESSAGES.sessionIdle, lastActivity: new Date(last).toISOString() })
    if (warn) {
      const expiresAt = last + rules.timeout
      events.push({ type: SERVER_MESSAGES.idleWarning, expiresAt: new Date(expiresAt).toISOString(), secondsLeft: Math.max(0, Math.round((expiresAt - now) / 1000)) })
    }
    return events
  }

  private async rowsOf(ids: string[]): Promise<Map<string, Row>> {
    const valid = ids.filter((id) => /^[0-9a-f-]{36}$/.test(id))
    if (valid.length === 0) return new Map()
    const rows = await this.d.db
      .select({ id: sessions.id, status: sessions.status, userId: sessions.userId, expiresAt: sessions.expiresAt, lastActivity: sessions.lastActivity })
      .from(sessions)
      .where(inArray(sessions.id, valid))
    return new Map(rows.map((r) => [r.id, { status: r.status, userId: r.userId, expiresAt: r.expiresAt.getTime(), lastActivity: r.lastActivity.getTime() }]))
  }

  private async hotLastActivity(ids: string[]): Promise<Map<string, number>> {
    if (ids.length === 0) return new Map()
    const pipeline = crossSlot(this.d.redis)
    for (const id of ids) pipeline.hget(this.d.keys.sessionPresence(id), 'lastActivity')
    const replies = (await pipeline.exec()) ?? []
    return new Map(ids.flatMap((id, i) => (replies[i]?.[1] ? [[id, Number(replies[i]![1])] as [string, number]] : [])))
  }
}

function listOf(d: DeadlineShard, list: ActivityList): string {
  return { active: d.active, warnedEarly: d.warnedEarly, idle: d.idle, warned: d.warned }[list]
}

function* pairs(flat: string[]): Generator<[string, number]> {
  for (let i = 0; i < flat.length; i += 2) yield [flat[i]!, Number(flat[i + 1])]
}
