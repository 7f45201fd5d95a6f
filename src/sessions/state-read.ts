// GET /api/session_state with no query (P5). On one Redis it is one round trip: a single
// script looks up the token, makes the session's step (the rate limit, the activity check,
// seq, tabs and the cached platform state: session-state.lua.ts) and reads the user's state
// generation. On a Redis Cluster it is two: the token lookup, then at once the session's step
// and the user's generation, because the token cache is keyed by the token alone and each
// session's and each user's keys have slots of their own (sessions/keys.ts). Nothing is
// cached in the process: a session ended on any node is refused here as soon as its ending
// reached the token cache, as by the guard. Whatever is not the plain case (no cached record,
// an ended, disabled, idle or mismatched session) goes the ordinary way, through
// Sessions.authenticate and stateOf, without spending the budget twice.
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ClientContext, Redis, Result } from 'ioredis'
import { MAX_TOKEN_LENGTH, requestInfo, SESSION_COOKIE } from './guards.js'
import { answerBudget, apiBudgetKey, defineBudgetCommand, spendBudget } from '../infra/budget.js'
import { isCluster } from '../infra/redis.js'
import type { Config } from '../config.js'
import type { SessionSlotKeys } from './keys.js'
import { tabIdOf } from './tabs.js'
import type { SettingsService } from '../settings/service.js'
import { expiryReason } from './deadlines.js'
import { unauthenticated } from './errors.js'
import type { Sessions } from './service.js'
import { stateBody } from './views.js'
import { sessionStateLua, sessionStateOneStepLua } from './session-state.lua.js'
import { activityListsLua, ID_PLACEHOLDER } from './store.lua.js'
import type { StateCache } from './state-cache.js'
import { parseRecord, type SessionRecord } from './records.js'
import { hashToken, judgeFingerprint } from './tokens.js'

type Found =
  | [0]
  | [4 | 2, number, number]
  | [1, number, number, string]
  | [3, number, number, string, number, number, string, string[], string, string, number]

type SessionStep = [2 | 1, number, number] | [3, number, number, number, number, string, string[], string, number]

type OneStep =
  | [0]
  | [2, number, number]
  | [1, number, number, string]
  | [3, number, number, number, number, string, string[], string, number, string, string, number]

// (tesseraActivityLists is typed where the sessions store defines it too.)
declare module 'ioredis' {
  interface RedisCommander<Context extends ClientContext = { type: 'default' }> {
    tesseraSessionState(...args: (string | number)[]): Result<SessionStep, Context>
    tesseraSessionStateOneStep(...args: (string | number)[]): Result<OneStep, Context>
  }
}

const NOT_FOUND: Found = [0]

export interface StateReadDeps {
  redis: Redis
  sessionKeys: SessionSlotKeys
  config: Pick<Config, 'rateLimits' | 'fingerprinting' | 'ws'>
  settings: Pick<SettingsService, 'get'>
  sessions: Pick<Sessions, 'authenticate' | 'recordByToken' | 'stateOf'>
  states: Pick<StateCache, 'resolve'>
}

export class StateRead {
  private readonly budget: { max: number; windowMs: number }
  /** One Redis, not a Cluster: the whole lookup is one script (session-state.lua.ts). */
  private readonly oneStep: boolean
  private readonly templates: string[]

  constructor(private readonly d: StateReadDeps) {
    d.redis.defineCommand('tesseraSessionState', { numberOfKeys: 6, lua: sessionStateLua })
    d.redis.defineCommand('tesseraSessionStateOneStep', { numberOfKeys: 1, lua: sessionStateOneStepLua })
    this.oneStep = !isCluster(d.redis)
    const k = d.sessionKeys
    const s = [k.sessionBudget, k.sessionPresence, k.sessionEnded, k.sessionSeq, k.sessionTabs, k.sessionState].map((key) => key(ID_PLACEHOLDER))
    // User ids are numbers: the template is made with 0 and its id put where the 0 is.
    const u = [k.userStateGen, k.userStateWriting].map((key) => key(0).replace('{u:0}', `{u:${ID_PLACEHOLDER}}`))
    this.templates = [...s, ...u]
    d.redis.defineCommand('tesseraActivityLists', { numberOfKeys: 5, lua: activityListsLua })
    defineBudgetCommand(d.redis)
    this.budget = d.config.rateLimits.api
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
      found = await this.run(tokenHash, apiBudgetKey(this.d.sessionKeys, record ? { sessionId: record.id } : { ip: req.ip }), now, idleTimeoutMs)
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

  /**
   * The token cache's record and what Redis holds of its session, spending the budget: the
   * record's session's, or `budgetKey` when the cache holds no record ('': nothing spent, [0]).
   */
  private async run(tokenHash: string, budgetKey: string, now: number, idleTimeoutMs: number): Promise<Found> {
    const k = this.d.sessionKeys
    if (this.oneStep && budgetKey === '') return this.runOneStep(tokenHash, now, idleTimeoutMs)
    const raw = await this.d.redis.get(k.sessionByToken(tokenHash))
    if (!raw) {
      if (budgetKey === '') return [0]
      const [count, ttl] = await spendBudget(this.d.redis, budgetKey, this.budget.windowMs)
      return [count > this.budget.max ? 2 : 4, count, ttl]
    }
    const rec = parseRecord(raw)
    if (rec.status !== 'active' || rec.userDisabled === true) {
      const [count, ttl] = await spendBudget(this.d.redis, k.sessionBudget(rec.id), this.budget.windowMs)
      return count > this.budget.max ? [2, count, ttl] : [1, count, ttl, raw]
    }
    const [step, gen, writing] = await Promise.all([
      this.d.redis.tesseraSessionState(
        k.sessionBudget(rec.id),
        k.sessionPresence(rec.id),
        k.sessionEnded(rec.id),
        k.sessionSeq(rec.id),
        k.sessionTabs(rec.id),
        k.sessionState(rec.id),
        this.budget.max,
        this.budget.windowMs,
        now,
        idleTimeoutMs,
        rec.lastActivity,
        rec.expiresAt,
        now - this.d.config.ws.tabStaleMs,
      ),
      this.d.redis.get(k.userStateGen(rec.userId)),
      this.d.redis.exists(k.userStateWriting(rec.userId)),
    ])
    if (step[0] !== 3) return step[0] === 2 ? [2, step[1], step[2]] : [1, step[1], step[2], raw]
    const [, count, ttl, lastActivity, known, seq, tabs, entry, lists] = step
    await this.relistIfForgotten(rec.id, lists, lastActivity)
    return [3, count, ttl, raw, lastActivity, known, seq, tabs, entry, gen ?? '', writing]
  }

  /** run() on one Redis, when no budget is to be spent without a record: one script. */
  private async runOneStep(tokenHash: string, now: number, idleTimeoutMs: number): Promise<Found> {
    const k = this.d.sessionKeys
    const step = await this.d.redis.tesseraSessionStateOneStep(
      k.sessionByToken(tokenHash),
      this.budget.max,
      this.budget.windowMs,
      now,
      idleTimeoutMs,
      now - this.d.config.ws.tabStaleMs,
      ...this.templates,
    )
    if (step[0] !== 3) return step
    const [, count, ttl, lastActivity, known, seq, tabs, entry, lists, raw, gen, writing] = step
    if (lists === 2) await this.relistIfForgotten(parseRecord(raw).id, lists, lastActivity)
    return [3, count, ttl, raw, lastActivity, known, seq, tabs, entry, gen, writing]
  }

  /** Redis had forgotten the session (the step's `lists` is 2): back on its deadline list, in its shard's slot. */
  private async relistIfForgotten(sessionId: string, lists: number, lastActivity: number): Promise<void> {
    if (lists !== 2) return
    const d = this.d.sessionKeys.deadlines(sessionId)
    await this.d.redis.tesseraActivityLists(d.active, d.idle, d.warned, d.warnedEarly, d.dirty, sessionId, 2, lastActivity)
  }
}
