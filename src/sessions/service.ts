// What a session does: authenticate a request, start one within the user's limit, end
// one (or many) for a reason, and describe itself as a SessionView or session_state.
import type { AlertRaiser } from './alert-raiser.js'
import type { Audit } from '../audit/service.js'
import type { Pool, Sql } from '../infra/db.js'
import type { RedisKeys } from '../infra/keys.js'
import type { Metrics } from '../infra/metrics.js'
import type { EventBus } from '../infra/bus.js'
import { TERMINATION_MESSAGES, SERVER_MESSAGES } from '../realtime/protocol.js'
import type { Settings } from '../settings/schemas.js'
import type { SettingsService } from '../settings/service.js'
import type { AppError, WarnLog } from '../infra/errors.js'
import { type EndReason, EXPIRY_REASONS, sessionEnded, unauthenticated } from './errors.js'
import { expiryReason } from './deadlines.js'
import type { StateCache } from './state-cache.js'
import type { ActivityOutcome, EndedSession, RequestInfo, SessionRecord } from './records.js'
import type { SessionStore } from './store.js'
import { fingerprintOf, hashToken, judgeFingerprint, parseDevice } from './tokens.js'
import { LOGIN_LOCK } from './login-lock.js'
import { liveSessionsOf, type OpenedSession, type OpenOptions, openSession } from './open.js'
import { type SessionView, stateBody, statusOf, toView, viewRowsOf } from './views.js'

export interface AuthContext {
  session: SessionRecord
  tokenHash: string
  lastActivity: number
  settings: Settings
}

/** What runs under a user's login lock (Sessions.whileLoginsWait). */
export interface LoginLockScope {
  /** The transaction that holds the lock: every query of the scope goes through it. */
  tx: Sql
  /** The user's active sessions, least recently active first; any already past a deadline is ended on the way. */
  liveSessions(): Promise<string[]>
  /** Ends sessions with the transaction (announced once it has committed). */
  end(sessionIds: string[], reason: EndReason, opts?: { actorUserId?: number | null; note?: string | null }): Promise<void>
}

export { LOGIN_LOCK } from './login-lock.js' // named here too, for test/sessions/login-lock.test.ts

/** How long a session's session_ended_elsewhere notice is remembered as sent (longer than any retry of its job). */
const NOTICE_ONCE_SECONDS = 86_400

/** The logged event that tells the tabs of a session why it ended (the hub also makes one up when the log lost it). */
export function terminalEvent({ reason, byTabId = null, note }: { reason: EndReason; byTabId?: string | null; note?: string | null }) {
  if (reason === 'logout') return { type: SERVER_MESSAGES.loggedOut, byTabId }
  if ((EXPIRY_REASONS as readonly string[]).includes(reason)) return { type: SERVER_MESSAGES.expired, reason }
  const message = TERMINATION_MESSAGES[reason as keyof typeof TERMINATION_MESSAGES] ?? TERMINATION_MESSAGES.revoked_by_user
  return { type: SERVER_MESSAGES.terminated, reason, message, ...(note ? { note } : {}) }
}

export interface SessionsDeps {
  store: SessionStore
  /** The cached platform state of sessions (session_state needs no query). */
  states: StateCache
  sql: Pool
  settings: SettingsService
  bus: EventBus
  keys: RedisKeys
  audit: Audit
  metrics: Metrics
  fingerprinting: boolean
  /** Follow-up work for ended sessions (the session-ended job): release locks, clear presence. */
  onEnded?: (ended: EndedSession[]) => Promise<void>
  /** Tells every tab of the locks an ending released (Locks.announceRelease: once per release). */
  announceLockReleases?: (releases: { id: number; sessionId: string; resources: string[]; reason: string }[]) => Promise<void>
  /** Raises the fingerprint_mismatch alert (never throws); none when absent. */
  alerts?: AlertRaiser
  log: WarnLog
}

export class Sessions {
  constructor(private readonly d: SessionsDeps) {}

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
    if (session.status === 'ended') throw sessionEnded(session.endReason ?? 'logout')
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
    const [row] = await this.d.sql`update sessions s set fingerprint = ${fingerprint}, user_agent = ${userAgent},
        device = ${JSON.stringify(parseDevice(info.userAgent))}::jsonb
      from (select user_agent from sessions where id = ${session.id}) before
      where s.id = ${session.id} and s.status = 'active' and s.fingerprint is distinct from ${fingerprint}
      returning before.user_agent`
    if (!row) return
    await this.d.audit.record({
      type: 'session.fingerprint_drift',
      userId: session.userId,
      sessionId: session.id,
      data: { from: session.fingerprint, to: fingerprint, userAgentBefore: row.user_agent ?? null, userAgent, ip: info.ip },
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
    return sessionEnded(current?.endReason ?? 'logout')
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

  /**
   * Ends sessions that are still active; returns those this call ended (idempotent). The
   * ending and its audit event commit together; what follows is repeated by the
   * session-ended job if this process dies before it is done.
   */
  async end(
    sessionIds: string[],
    reason: EndReason,
    opts: { actorUserId?: number | null; note?: string | null; adminReason?: string | null; byTabId?: string | null } = {},
  ): Promise<EndedSession[]> {
    const ended = await this.d.store.markEnded(this.d.sql, sessionIds, reason, { ...opts, audit: this.d.audit.enabled })
    await this.afterEnd(ended)
    return ended
  }

  /** After PostgreSQL has recorded the ends: announce them, then queue their session-ended jobs. */
  private async afterEnd(ended: EndedSession[]) {
    if (ended.length === 0) return
    for (const e of ended) this.d.metrics.sessionsEnded.inc({ reason: e.reason })
    // The ending released their locks (markEnded): waiting tabs hear it first, as nothing
    // below changes what they may take. The session-ended job announces what this misses, once.
    const releases = ended.flatMap((e) => (e.lockRelease ? [{ ...e.lockRelease, sessionId: e.id, reason: e.reason }] : []))
    if (releases.length > 0) await this.d.announceLockReleases?.(releases)
    await this.announce(ended)
    await this.d.onEnded?.(ended)
  }

  /**
   * The ending's follow-up is done (the session-ended job finalized it): nothing repeats its
   * announcements any more, so their once-markers, and the state version that only guarded
   * live state changes, go with the session's event log instead of outliving it by a day
   * (or by the rest of the lifetime, for the version). The soak (test/system) found them piling up.
   */
  async settled(sessionId: string, lockReleaseIds: number[]): Promise<void> {
    const k = this.d.keys
    await this.d.bus.expireWithLog([k.sessionNoticed(sessionId), k.sessionVersion(sessionId), ...lockReleaseIds.map((id) => k.lockReleaseAnnounced(id))])
  }

  /**
   * Everything others must see of an ending: the token cache holds the ended record, the
   * sweep forgets the session, its tabs get the terminal event (and close), then the user's
   * other sessions get `user.notice` session_ended_elsewhere. Each step may be repeated
   * (the session-ended job does): events and notices go out once.
   */
  async announce(ended: EndedSession[]): Promise<void> {
    if (ended.length === 0) return
    await this.d.store.cacheEnded(ended)
    await this.d.store.unschedule(ended.map((e) => e.id))
    await Promise.all(ended.map((e) => this.d.bus.publishTerminalEvent(e.id, terminalEvent(e))))
    // After every terminal event: a tab of one of these sessions closes before it could hear of the others.
    await Promise.all(
      ended.map((e) =>
        this.d.bus.publishOnce(this.d.keys.sessionNoticed(e.id), NOTICE_ONCE_SECONDS, { userId: e.userId }, {
          type: SERVER_MESSAGES.userNotice,
          kind: 'session_ended_elsewhere',
          sessionId: e.id,
          reason: e.reason,
          device: e.device,
          ip: e.ip,
        }),
      ),
    )
  }

  /**
   * Runs `fn` while no login of the user can run: on one transaction that holds the user's
   * login lock, so that what `fn` counts of the user's sessions stays true until it returns.
   * Everything `fn` does goes through `scope.tx`: logins waiting for the lock each hold a
   * pool connection, so a query on the pool from in here could wait for ever (issue 12).
   * Sessions it ends are announced once the transaction has committed.
   */
  async whileLoginsWait<T>(userId: number, fn: (scope: LoginLockScope) => Promise<T>): Promise<T> {
    const settings = await this.d.settings.get()
    const ended: EndedSession[] = []
    const result = (await this.d.sql.begin(async (tx) => {
      await tx`select pg_advisory_xact_lock(${LOGIN_LOCK}, ${userId})`
      return fn({
        tx,
        liveSessions: async () => (await liveSessionsOf(this.d, tx, userId, settings, ended)).map((s) => s.id),
        end: async (sessionIds, reason, opts = {}) => {
          ended.push(...(await this.d.store.markEnded(tx, sessionIds, reason, { ...opts, audit: this.d.audit.enabled })))
        },
      })
    })) as T
    await this.afterEnd(ended)
    return result
  }

  /** Active sessions of a user other than `exceptId` (for logout-all, password change, disable). */
  async activeIdsOfUser(userId: number, exceptId?: string): Promise<string[]> {
    const rows = await this.d.store.activeSessionIdsOfUser(this.d.sql, userId)
    return rows.map((r) => r.id).filter((id) => id !== exceptId)
  }

  /** Refreshes the cached records of a user's sessions so a role or account change is seen at once. */
  async refreshUser(userId: number): Promise<void> {
    await this.d.store.recacheUser(userId)
  }

  /** SessionViews of the given active sessions, in the given order. */
  async viewsOf(sessionIds: string[], settings: Settings, sql: Sql = this.d.sql): Promise<SessionView[]> {
    if (sessionIds.length === 0) return []
    const rows = await viewRowsOf(sql, sessionIds)
    const presence = await this.d.store.presenceOf(sessionIds)
    return sessionIds.flatMap((id) => {
      const r = rows.get(id)
      return r ? [toView(r, presence.get(id), settings)] : []
    })
  }

  /** The SessionView of a session just opened: it has no presence yet, so PostgreSQL alone answers (and a login does while Redis fails). */
  async viewOfNew(sessionId: string, settings: Settings): Promise<SessionView | null> {
    const row = (await viewRowsOf(this.d.sql, [sessionId])).get(sessionId)
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
    const p = presence.get(session.id)
    // A tab may have reported input since this request authenticated.
    const lastActivity = Math.max(auth.lastActivity, p?.lastActivity ?? 0)
    return stateBody(session, auth.settings, { lastActivity, tabs: p?.tabs ?? 0, seq, ...state })
  }

  /** Ends the user's other sessions that are past a deadline and not yet swept. */
  async cleanupStale(userId: number, exceptId: string, settings: Settings): Promise<number> {
    const ended: EndedSession[] = []
    await this.d.sql.begin(async (tx) => {
      await tx`select pg_advisory_xact_lock(${LOGIN_LOCK}, ${userId})`
      await liveSessionsOf(this.d, tx, userId, settings, ended)
    })
    await this.afterEnd(ended)
    return ended.filter((e) => e.id !== exceptId).length
  }
}
