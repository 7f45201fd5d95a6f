// Ending sessions: the ending committed with its audit event and its locks' release (one
// statement, SessionStore.markEnded), then announced (token cache, tabs, the user's other
// sessions) and handed to the session-ended job; and the work that runs under a user's
// login lock, whose endings are announced once it has committed.
import type { Audit } from '../audit/service.js'
import type { EventBus } from '../infra/bus.js'
import type { Db, Tx } from '../infra/db.js'
import type { SessionSlotKeys } from './keys.js'
import type { Metrics } from '../infra/metrics.js'
import { SERVER_MESSAGES, TERMINATION_MESSAGES } from '../realtime/protocol.js'
import type { Settings } from '../settings/schemas.js'
import type { SettingsService } from '../settings/service.js'
import { type EndReason, EXPIRY_REASONS } from './errors.js'
import { lockLogins } from './login-lock.js'
import { liveSessionsOf } from './open.js'
import type { EndedSession } from './records.js'
import type { SessionStore } from './store.js'

/** What runs under a user's login lock (Sessions.whileLoginsWait). */
export interface LoginLockScope {
  /** The transaction that holds the lock: every query of the scope goes through it. */
  tx: Tx
  /** The user's active sessions, least recently active first; any already past a deadline is ended on the way. */
  liveSessions(): Promise<string[]>
  /** Ends sessions with the transaction (announced once it has committed). */
  end(sessionIds: string[], reason: EndReason, opts?: { actorUserId?: number | null; note?: string | null }): Promise<void>
}

/** Who ended a session and why, besides the reason. */
export interface EndOptions {
  actorUserId?: number | null
  note?: string | null
  adminReason?: string | null
  byTabId?: string | null
}

/** How long a session's session_ended_elsewhere notice is remembered as sent (longer than any retry of its job). */
const NOTICE_ONCE_SECONDS = 86_400

/** The logged event that tells the tabs of a session why it ended (the hub also makes one up when the log lost it). */
export function terminalEvent({ reason, byTabId = null, note }: { reason: EndReason; byTabId?: string | null; note?: string | null }) {
  if (reason === 'logout') return { type: SERVER_MESSAGES.loggedOut, byTabId }
  if ((EXPIRY_REASONS as readonly string[]).includes(reason)) return { type: SERVER_MESSAGES.expired, reason }
  const message = TERMINATION_MESSAGES[reason as keyof typeof TERMINATION_MESSAGES] ?? TERMINATION_MESSAGES.revoked_by_user
  return { type: SERVER_MESSAGES.terminated, reason, message, ...(note ? { note } : {}) }
}

/** What ending sessions uses (the Sessions service's deps have all of it). */
export interface EnderDeps {
  store: SessionStore
  db: Db
  settings: Pick<SettingsService, 'get'>
  bus: Pick<EventBus, 'expireWithLog' | 'publishTerminalEvent' | 'publishOnce'>
  keys: SessionSlotKeys
  audit: Pick<Audit, 'enabled'>
  metrics: Metrics
  /** Follow-up work for ended sessions (the session-ended job): release locks, clear presence. */
  onEnded?: (ended: EndedSession[]) => Promise<void>
  /** Tells every tab of the locks an ending released (Locks.announceRelease: once per release). */
  announceLockReleases?: (releases: { id: number; sessionId: string; resources: string[]; reason: string }[]) => Promise<void>
}

export class SessionEnder {
  /** `d` is the Sessions service's own deps object: the locks plugin sets announceLockReleases on it later. */
  constructor(private readonly d: EnderDeps) {}

  /**
   * Ends sessions that are still active; returns those this call ended (idempotent). The
   * ending and its audit event commit together; what follows is repeated by the
   * session-ended job if this process dies before it is done.
   */
  async end(sessionIds: string[], reason: EndReason, opts: EndOptions = {}): Promise<EndedSession[]> {
    const ended = await this.d.store.markEnded(this.d.db, sessionIds, reason, { ...opts, audit: this.d.audit.enabled })
    await this.afterEnd(ended)
    return ended
  }

  /** After PostgreSQL has recorded the ends: announce them, then queue their session-ended jobs. */
  async afterEnd(ended: EndedSession[]): Promise<void> {
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
   * Everything `fn` does goes through the scope's transaction: logins waiting for the lock
   * each hold a pool connection, so a query on the pool from in here could wait for ever
   * (issue 12). Sessions it ends are announced once the transaction has committed.
   */
  async whileLoginsWait<T>(userId: number, fn: (scope: LoginLockScope) => Promise<T>): Promise<T> {
    const settings = await this.d.settings.get()
    const ended: EndedSession[] = []
    const result = await this.d.db.transaction(async (tx) => {
      await lockLogins(tx, userId)
      return fn({
        tx,
        liveSessions: async () => (await liveSessionsOf(this.d, tx, userId, settings, ended)).map((s) => s.id),
        end: async (sessionIds, reason, opts = {}) => {
          ended.push(...(await this.d.store.markEnded(tx, sessionIds, reason, { ...opts, audit: this.d.audit.enabled })))
        },
      })
    })
    await this.afterEnd(ended)
    return result
  }

  /** Ends the user's other sessions that are past a deadline and not yet swept. */
  async cleanupStale(userId: number, exceptId: string, settings: Settings): Promise<number> {
    const ended: EndedSession[] = []
    await this.d.db.transaction(async (tx) => {
      await lockLogins(tx, userId)
      await liveSessionsOf(this.d, tx, userId, settings, ended)
    })
    await this.afterEnd(ended)
    return ended.filter((e) => e.id !== exceptId).length
  }
}
