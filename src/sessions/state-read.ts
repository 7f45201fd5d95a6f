// GET /api/session_state in one Redis round trip and no query (quality.md P5): the rate
// limit, the token lookup, the activity check, seq, tabs and the cached platform state come
// from one script (session-state.lua.ts). Nothing is cached in the process: a session
// ended on any node is refused here as soon as its ending reached the token cache, as by
// the guard. Whatever is not the plain case (no cached record, an ended, disabled, idle or
// mismatched session) goes the ordinary way, through Sessions.authenticate and stateOf,
// without spending the budget twice.
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ClientContext, Redis, Result } from 'ioredis'
import { MAX_TOKEN_LENGTH, requestInfo, SESSION_COOKIE } from './guards.js'
import { answerBudget, apiBudgetPrefix } from '../infra/budget.js'
import type { Config } from '../config.js'
import type { RedisKeys } from '../infra/keys.js'
import { tabIdOf } from './tabs.js'
import type { SettingsService } from '../settings/service.js'
import { expiryReason } from './deadlines.js'
import { unauthenticated } from './errors.js'
import type { Sessions } from './service.js'
import { stateBody } from './views.js'
import { sessionStateLua } from './session-state.lua.js'
import type { StateCache } from './state-cache.js'
import { parseRecord, type SessionRecord } from './records.js'
import { hashToken, judgeFingerprint } from './tokens.js'

type Found =
  | [0]
  | [4 | 2, number, number]
  | [1, number, number, string]
  | [3, number, number, string, number, number, string, string[], string, string, number]

declare module 'ioredis' {
  interface RedisCommander<Context extends ClientContext = { type: 'default' }> {
    tesseraSessionState(...args: (string | number)[]): Result<Found, Context>
  }
}

const NOT_FOUND: Found = [0]

export interface StateReadDeps {
  redis: Redis
  keys: RedisKeys
  config: Pick<Config, 'rateLimits' | 'fingerprinting' | 'ws'>
  settings: Pick<SettingsService, 'get'>
  sessions: Pick<Sessions, 'authenticate' | 'recordByToken' | 'stateOf'>
  states: Pick<StateCache, 'resolve'>
}

export class StateRead {
  private readonly budget: { max: number; windowMs: number }
  private readonly budgetPrefix: string

  constructor(private readonly d: StateReadDeps) {
    d.redis.defineCommand('tesseraSessionState', { numberOfKeys: 6, lua: sessionStateLua })
    this.budget = d.config.rateLimits.api
    this.budgetPrefix = apiBudgetPrefix(d.keys)
  }

  /** The session_state body for the request's cookie, or the error the guard would throw. */
  async read(req: FastifyRequest, reply: FastifyReply) {
    const token = req.cookies[SESSION_COOKIE]
    const usable = token !== undefined && token !== '' && token.length <= MAX_TOKEN_LENGTH
    const tokenHash = usable ? hashToken(token) : ''
    const settings = await this.d.settings.get()
    const idleTimeoutMs = settings.idleTimeoutSeconds * 1000
    const now = Date.now()
    let found = usable ? await this.run(tokenHash, '', now, idleTimeoutMs) : NOT_FOUND
    let record: SessionRecord | null = null
    if (found[0] === 0) {
      // The token cache holds nothing for it: PostgreSQL says whose budget it spends (and fills the cache).
      record = usable ? await this.d.sessions.recordByToken(token) : null
      found = await this.run(tokenHash, record ? `s:${record.id}` : `ip:${req.ip}`, now, idleTimeoutMs)
    }
    if (found[0] === 0) throw unauthenticated()
    const [outcome, count, ttl] = found
    answerBudget(reply, this.budget.max, count, ttl)
    if (outcome === 4 && !record) throw unauthenticated()
    if (outcome !== 3) return this.ordinary(req, token!, outcome === 1 ? parseRecord(found[3]) : record)

    const [, , , raw, lastActivity, , seq, tabs, entry, gen, writing] = found
    const session = parseRecord(raw)
    const info = requestInfo(req)
    if (this.d.config.fingerprinting && session.fingerprint !== null && judgeFingerprint(session.fingerprint, info.userAgent, info.acceptLanguage) !== 'same') {
      return this.ordinary(req, token!, session)
    }
    if (expiryReason({ expiresAt: session.expiresAt, lastActivity }, idleTimeoutMs, now)) return this.ordinary(req, token!, session)
    const state = await this.d.states.resolve(session.id, session.userId, { entry, gen, writing: writing === 1 })
    // One member per socket: a tab whose old socket is not yet reaped counts once.
    const tabCount = tabs.length < 2 ? tabs.length : new Set(tabs.map(tabIdOf)).size
    return stateBody(session, settings, { lastActivity, tabs: tabCount, seq: Number(seq), ...state })
  }

  /** The guard's and the handler's own way, from the record already looked up (the budget is spent). */
  private async ordinary(req: FastifyRequest, token: string, record: SessionRecord | null) {
    const auth = await this.d.sessions.authenticate(token, requestInfo(req), false, record)
    req.auth = auth
    return this.d.sessions.stateOf(auth)
  }

  private run(tokenHash: string, budgetKey: string, now: number, idleTimeoutMs: number): Promise<Found> {
    const k = this.d.keys
    return this.d.redis.tesseraSessionState(
      k.sessionByToken(tokenHash),
      k.dueActive,
      k.dueIdle,
      k.dueWarned,
      k.dueWarnedEarly,
      k.dirtyActivity,
      k.prefix,
      this.budgetPrefix,
      this.budget.max,
      this.budget.windowMs,
      budgetKey,
      now,
      idleTimeoutMs,
      now - this.d.config.ws.tabStaleMs,
    )
  }
}
