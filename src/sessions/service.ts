// What a session does: authenticate a request, start one within the user's limit, record
// its activity, and describe itself as a SessionView or session_state. Ending sessions, and
// what runs under a user's login lock, is ending.ts's: this service hands it on.
import { and, eq, sql } from 'drizzle-orm'
import { alias } from 'drizzle-orm/pg-core'
import { sessions } from '../../db/schema.js'
import type { AlertRaiser } from './alert-raiser.js'
import type { Audit } from '../audit/service.js'
import type { Queryable } from '../infra/db.js'
import type { EventBus } from '../infra/bus.js'
import { SERVER_MESSAGES } from '../realtime/protocol.js'
import type { Settings } from '../settings/schemas.js'
import type { SettingsService } from '../settings/service.js'
import type { AppError, WarnLog } from '../infra/errors.js'
import { type EndReason, sessionEnded, unauthenticated } from './errors.js'
import { expiryReason } from './deadlines.js'
import { type EndOptions, type EnderDeps, type LoginLockScope, SessionEnder } from './ending.js'
import type { PlatformState, StateCache } from './state-cache.js'
import type { ActivityOutcome, EndedSession, Presence, RequestInfo, SessionRecord } from './records.js'
import { fingerprintOf, hashToken, judgeFingerprint, parseDevice } from './tokens.js'
import { type OpenedSession, type OpenOptions, openSession } from './open.js'
import { type SessionView, stateBody, statusOf, toView, viewRowsOf } from './views.js'

export interface AuthContext {
  session: SessionRecord
  tokenHash: string
  lastActivity: number
  settings: Settings
}

export type { LoginLockScope } from './ending.js'
export { terminalEvent } from './ending.js'
export { LOGIN_LOCK } from './login-lock.js' // named here too, for test/sessions/login-lock.test.ts

/** What the service uses; what ending sessions uses (EnderDeps) is part of it. */
export interface SessionsDeps extends EnderDeps {
  /** The cached platform state of sessions (session_state needs no query). */
  states: StateCache
  settings: SettingsService
  bus: EventBus
  audit: Audit
  fingerprinting: boolean
  /** Raises the fingerprint_mismatch alert (never throws); none when absent. */
  alerts?: AlertRaiser
  log: WarnLog
}

export class Sessions {
  private readonly ender: SessionEnder

  constructor(private readonly d: SessionsDeps) {
    this.ender = new SessionEnder(d)
  }

  /** The locks plugin, above this layer, announces the locks an ending released through this. */
  announceLockReleasesWith(announce: NonNullable<SessionsDeps['announceLockReleases']>): void {
    this.d.announceLockReleases = announce
  }

  /**
   * Resolves the token to a live session or throws the contract's 401. Ends a session
   * whose lifetime or idle timeout has passed, or whose fingerprint no longer matches.
   * `touch` records the request as user activity.
   */
  async authenticate(token: string | undefined, info: RequestInfo, touch: boolean, known?: SessionRecord | null): Promise<AuthContext> {
    if (!token || token.length > 200) throw unauthenticated()
    const tokenHash = hashToken(token)
    // `known`: the caller already looked the token up (the rate limit keys by it).
    const session = known !== undefined ? known : await this.d.store.findByTokenHash(tokenHash)
    if (!session) throw unauthenticated()
    return this.check(session, tokenHash, info, { touch, fingerprint: this.d.fingerprinting })
  }

  /** For a session named by a realtime ticket: the same checks, without the browser fingerprint. */
  async authenticateRecord(session: SessionRecord): Promise<AuthContext> {
    return this.check(session, '', { ip: null, userAgent: undefined, acceptLanguage: undefined }, { touch: false, fingerprint: false })
  }

  private async check(session: SessionRecord, tokenHash: string, info: RequestInfo, o: { touch: boolean; fingerprint: boolean }): Promise<AuthContext> {
    if (session.status === 'ended') throw sessionEnded(session.endReason ?? 'logout', session.endNote)
    const settings = await this.d.settings.get()
    const now = Date.now()
    if (session.userDisabled) throw await this.endAndRefuse(session, 'user_disabled')
    const idleTimeoutMs = settings.idleTimeoutSeconds * 1000
    const verdict = o.fingerprint && session.fingerprint !== null ? judgeFingerprint(session.fingerprint, info.userAgent, info.acceptLanguage) : 'same'
    const mismatch = verdict === 'changed'
    const activity = await this.activityOf(session, { now, at: now, idleTimeoutMs, write: o.touch && !mismatch && now < session.expiresAt })
    if (activity.outcome === 'ended') throw await this.refusalOf(session)
    const expired = expiryReason({ expiresAt: session.expiresAt, lastActivity: activity.last }, idleTimeoutMs, now)
    if (expired) throw await this.endAndRefuse(session, expired)
    if (mismatch) {
      const refusal = await this.endAndRefuse(session, 'compromised')
      await this.d.alerts?.raise({
        type: 'fingerprint_mismatch',
        userId: session.userId,
        username: session.username,
        data: { sessionId: session.id, ip: info.ip, userAgent: info.userAgent?.slice(0, 300) ?? null },
      })
      throw refusal
    }
    if (verdict === 'drift') await this.followDrift(session, info)
    if (activity.wasIdle) await this.announceActive(session, now)
    return { session, tokenHash, lastActivity: o.touch ? now : activity.last, settings }
  }

  /**
   * The same device after a browser update: the stored fingerprint, User-Agent and device
   * follow it (in PostgreSQL and in the token cache), and the drift is audited.
   */
  private async followDrift(session: SessionRecord, info: RequestInfo): Promise<void> {
    const fingerprint = fingerprintOf(info.userAgent)
    const userAgent = info.userAgent?.slice(0, 1000) ?? null
    // `before`: the row as the statement found it, for the User-Agent it had.
    const before = alias(sessions, 'before')
    const [row] = await this.d.db
      .update(sessions)
      .set({ fingerprint, userAgent, device: parseDevice(info.userAgent) })
      .from(before)
      .where(
        and(
          eq(before.id, session.id),
          eq(sessions.id, session.id),
          eq(sessions.status, 'active'),
          sql`${sessions.fingerprint} is distinct from ${fingerprint}`,
        ),
      )
      .returning({ userAgent: before.userAgent })
    if (!row) return
    await this.d.audit.record({
      type: 'session.fingerprint_drift',
      userId: session.userId,
      sessionId: session.id,
      data: { from: session.fingerprint, to: fingerprint, userAgentBefore: row.userAgent, userAgent, ip: info.ip },
    })
    await this.d.store.recacheUser(session.userId)
  }

  /**
   * User input reported by a tab (never in the future); moves the session's last activity.
   * Input that comes after the idle deadline does not revive the session: it ends it, by
   * the deadline that passed first. Input for an ended session writes nothing.
   */
  async recordInput(session: SessionRecord, at: number): Promise<void> {
    const settings = await this.d.settings.get()
    const now = Date.now()
    const when = Math.min(at, now)
    const idleTimeoutMs = settings.idleTimeoutSeconds * 1000
    const activity = await this.activityOf(session, { now, at: when, idleTimeoutMs, write: now < session.expiresAt })
    if (activity.outcome === 'ended') return
    const expired = expiryReason({ expiresAt: session.expiresAt, lastActivity: activity.last }, idleTimeoutMs, now)
    if (expired) {
      await this.end([session.id], expired)
      return
    }
    if (activity.wasIdle) await this.announceActive(session, when)
  }

  /**
   * Records (or only reads) activity. When Redis has forgotten the last activity, the
   * caller's copy may be old (a socket holds the record from when it connected), so an
   * idle verdict on it is checked against PostgreSQL before it counts.
   */
  private async activityOf(session: SessionRecord, o: { now: number; at: number; idleTimeoutMs: number; write: boolean }): Promise<ActivityOutcome> {
    const first = await this.d.store.recordActivity(session, { ...o, fallback: session.lastActivity })
    if (first.outcome !== 'idle_over' || first.known) return first
    const fresh = await this.d.store.findById(session.id)
    if (fresh?.status === 'ended') return { ...first, outcome: 'ended' }
    if (!fresh || fresh.lastActivity <= session.lastActivity) return first
    return this.d.store.recordActivity(session, { ...o, fallback: fresh.lastActivity })
  }

  /** The refusal for a session that another path has ended: with the reason that won. */
  private async refusalOf(session: SessionRecord): Promise<AppError> {
    const current = await this.d.store.findById(session.id)
    return sessionEnded(current?.endReason ?? 'logout', current?.endNote)
  }

  /** A tab moved to another view: kept in the session's timeline. */
  async recordView(session: SessionRecord, view: string, tabId: string): Promise<void> {
    await this.d.audit.record({ type: 'session.view', userId: session.userId, sessionId: session.id, data: { view, tabId } })
  }

  /** Input after the sweep flagged the session idle: every tab hears it is active again. */
  private async announceActive(session: SessionRecord, at: number) {
    // Audited before the tabs hear it, so the timeline never shows what followed first.
    await this.d.audit.record({ type: 'session.active', userId: session.userId, sessionId: session.id })
    await this.d.bus.publishSessionEvent(session.id, { type: SERVER_MESSAGES.sessionActive, lastActivity: new Date(at).toISOString() }, new Date(session.expiresAt))
  }

  /** The record behind a token, ended or not, or null. */
  recordByToken(token: string): Promise<SessionRecord | null> {
    return this.d.store.findByTokenHash(hashToken(token))
  }

  /**
   * The cached record of a token with one request of its session's API budget spent, when
   * one Redis step does both (the store's cachedRecordSpending); else null, and nothing spent.
   */
  cachedRecordSpending(token: string, windowMs: number): Promise<{ record: SessionRecord; count: number; ttl: number } | null> {
    return this.d.store.cachedRecordSpending(hashToken(token), windowMs)
  }

  /** The record of a session by its public id (realtime tickets name sessions by id). */
  byId(sessionId: string): Promise<SessionRecord | null> {
    return this.d.store.findById(sessionId)
  }

  private async endAndRefuse(session: SessionRecord, reason: EndReason): Promise<AppError> {
    const ended = await this.end([session.id], reason)
    // Lost the race to another ender: report the reason that won.
    return ended.length === 0 ? this.refusalOf(session) : sessionEnded(reason)
  }

  /**
   * Opens a session for a user whose password was right, within the concurrent-session
   * limit. A per-user advisory lock serialises logins of one user across every node, so
   * parallel logins can never exceed the limit. Throws CredentialsChanged when the account
   * was disabled, or its password changed, since `user.passwordHash` was checked.
   */
  open(user: { id: number; role: string; passwordHash: string }, opts: OpenOptions): Promise<OpenedSession> {
    return openSession(this.d, { viewsOf: (...a) => this.viewsOf(...a), afterEnd: (e) => this.afterEnd(e) }, user, opts)
  }

  /** Ends sessions that are still active; returns those this call ended (see SessionEnder.end). */
  end(sessionIds: string[], reason: EndReason, opts: EndOptions = {}): Promise<EndedSession[]> {
    return this.ender.end(sessionIds, reason, opts)
  }

  private afterEnd(ended: EndedSession[]): Promise<void> {
    return this.ender.afterEnd(ended)
  }

  /** The ending's follow-up is done: its once-markers go with the session's event log (see SessionEnder.settled). */
  settled(sessionId: string, lockReleaseIds: number[]): Promise<void> {
    return this.ender.settled(sessionId, lockReleaseIds)
  }

  /** Everything others must see of an ending, repeatable (see SessionEnder.announce). */
  announce(ended: EndedSession[]): Promise<void> {
    return this.ender.announce(ended)
  }

  /** Runs `fn` under the user's login lock; its endings are announced after the commit (see SessionEnder.whileLoginsWait). */
  whileLoginsWait<T>(userId: number, fn: (scope: LoginLockScope) => Promise<T>): Promise<T> {
    return this.ender.whileLoginsWait(userId, fn)
  }

  /** Active sessions of a user other than `exceptId` (for logout-all, password change, disable). */
  async activeIdsOfUser(userId: number, exceptId?: string): Promise<string[]> {
    const rows = await this.d.store.activeSessionIdsOfUser(this.d.db, userId)
    return rows.map((r) => r.id).filter((id) => id !== exceptId)
  }

  /** Refreshes the cached records of a user's sessions so a role or account change is seen at once. */
  async refreshUser(userId: number): Promise<void> {
    await this.d.store.recacheUser(userId)
  }

  /** SessionViews of the given active sessions, in the given order. */
  async viewsOf(sessionIds: string[], settings: Settings, db: Queryable = this.d.db): Promise<SessionView[]> {
    if (sessionIds.length === 0) return []
    const rows = await viewRowsOf(db, sessionIds)
    const presence = await this.d.store.presenceOf(sessionIds)
    return sessionIds.flatMap((id) => {
      const r = rows.get(id)
      return r ? [toView(r, presence.get(id), settings)] : []
    })
  }

  /** The SessionView of a session just opened: it has no presence yet, so PostgreSQL alone answers (and a login does while Redis fails). */
  async viewOfNew(sessionId: string, settings: Settings): Promise<SessionView | null> {
    const row = (await viewRowsOf(this.d.db, [sessionId])).get(sessionId)
    return row ? toView(row, undefined, settings) : null
  }

  expiryOf(auth: AuthContext) {
    return {
      expiresAt: new Date(auth.session.expiresAt).toISOString(),
      idleExpiresAt: new Date(auth.lastActivity + auth.settings.idleTimeoutSeconds * 1000).toISOString(),
      status: statusOf(auth.lastActivity, auth.settings),
    }
  }

  /** The `GET /api/session_state` body: the snapshot a tab syncs from. */
  async stateOf(auth: AuthContext) {
    const { session } = auth
    const [state, seq, presence] = await Promise.all([
      this.d.states.read(session.id, session.userId),
      this.d.bus.currentSeq(session.id),
      this.d.store.presenceOf([session.id]),
    ])
    return stateWith(auth, state, seq, presence.get(session.id))
  }

  /** The snapshot of a tab's `welcome`: its hello has read the seq and the presence already. */
  async stateAt(auth: AuthContext, seq: number, presence: Pick<Presence, 'lastActivity' | 'tabs'>) {
    return stateWith(auth, await this.d.states.read(auth.session.id, auth.session.userId), seq, presence)
  }

  /** Ends the user's other sessions that are past a deadline and not yet swept. */
  cleanupStale(userId: number, exceptId: string, settings: Settings): Promise<number> {
    return this.ender.cleanupStale(userId, exceptId, settings)
  }
}

function stateWith(auth: AuthContext, state: PlatformState, seq: number, p: Pick<Presence, 'lastActivity' | 'tabs'> | undefined) {
  // A tab may have reported input since this request authenticated.
  const lastActivity = Math.max(auth.lastActivity, p?.lastActivity ?? 0)
  return stateBody(auth.session, auth.settings, { lastActivity, tabs: p?.tabs ?? 0, seq, ...state })
}
