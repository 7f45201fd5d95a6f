// Starting a session: under the user's login lock, the account checked as it is now, the
// sessions past a deadline ended, the limit applied (block the new one, or end the oldest),
// the session inserted; then, best effort, its deadlines, its log and the admin feed.
import { randomUUID } from 'node:crypto'
import { eq } from 'drizzle-orm'
import { users } from '../../db/schema.js'
import type { Audit } from '../audit/service.js'
import type { EventBus } from '../infra/bus.js'
import type { Db, Queryable, Tx } from '../infra/db.js'
import { AppError, bestEffort, count, type WarnLog } from '../infra/errors.js'
import type { Settings } from '../settings/schemas.js'
import { type SettingsService, sessionLimitFor } from '../settings/service.js'
import { type ExpiryReason, expiryReason } from './deadlines.js'
import type { EndedSession, RequestInfo } from './records.js'
import { CredentialsChanged, lockLogins } from './login-lock.js'
import type { SessionStore } from './store.js'
import type { SessionView } from './views.js'
import { type Device, fingerprintOf, hashToken, newToken } from './tokens.js'

/** What opening uses (SessionsDeps has all of it). */
export interface OpenDeps {
  settings: Pick<SettingsService, 'get'>
  db: Db
  store: SessionStore
  audit: Pick<Audit, 'enabled'>
  bus: Pick<EventBus, 'startLog' | 'publishAdminChange'>
  fingerprinting: boolean
  log: WarnLog
}

/** What opening needs of the Sessions service itself. */
export interface OpenHost {
  viewsOf(sessionIds: string[], settings: Settings, db?: Queryable): Promise<SessionView[]>
  afterEnd(ended: EndedSession[]): Promise<void>
}

export interface OpenOptions {
  platformId: number | null
  endSessionId?: string
  info: RequestInfo
  device: Device
  /** Writes that commit with the session or not at all (its login record and audit event), on the opening's transaction. */
  alsoCommit?: (tx: Tx, sessionId: string) => Promise<void>
}

export interface OpenedSession {
  id: string
  token: string
  expiresAt: Date
  ended: EndedSession[]
}

/**
 * Opens a session for a user whose password was right, within the concurrent-session
 * limit. A per-user advisory lock serialises logins of one user across every node, so
 * parallel logins can never exceed the limit. Throws CredentialsChanged when the account
 * was disabled, or its password changed, since `user.passwordHash` was checked.
 */
export async function openSession(
  d: OpenDeps,
  s: OpenHost,
  user: { id: number; role: string; passwordHash: string },
  opts: OpenOptions,
): Promise<OpenedSession> {
  const settings = await d.settings.get()
  const token = newToken()
  const id = randomUUID()
  const expiresAt = new Date(Date.now() + settings.lifetimeSeconds * 1000)
  const ended: EndedSession[] = []

  await d.db.transaction(async (tx) => {
    await lockLogins(tx, user.id)
    // The account as it is now: a role, password or account change waits for this lock to
    // apply itself to the user's sessions, so one that came first is seen here. A password
    // hash is salted afresh on every change: the one that was checked names the password.
    const [current] = await tx
      .select({ role: users.role, passwordHash: users.passwordHash, disabled: users.disabled })
      .from(users)
      .where(eq(users.id, user.id))
    if (!current || current.disabled || current.passwordHash !== user.passwordHash) throw new CredentialsChanged()
    const limit = sessionLimitFor(settings, user.id, current.role)
    let active = await liveSessionsOf(d, tx, user.id, settings, ended)
    if (opts.endSessionId && active.some((s) => s.id === opts.endSessionId)) {
      ended.push(...(await d.store.markEnded(tx, [opts.endSessionId], 'session_limit', { audit: d.audit.enabled })))
      active = active.filter((s) => s.id !== opts.endSessionId)
    }
    if (active.length >= limit) {
      if (settings.limitPolicy === 'block_new') {
        const views = await s.viewsOf(active.map((s) => s.id), settings, tx)
        throw new AppError(409, 'SESSION_LIMIT_REACHED', `You are signed in on ${count(active.length, 'device')}, the most allowed; choose one to sign out.`, {
          limit,
          sessions: views,
        })
      }
      const oldest = active.slice(0, active.length - limit + 1).map((s) => s.id)
      ended.push(...(await d.store.markEnded(tx, oldest, 'session_limit', { audit: d.audit.enabled })))
    }
    await d.store.insert(tx, {
      id,
      userId: user.id,
      tokenHash: hashToken(token),
      platformId: opts.platformId,
      expiresAt,
      ip: opts.info.ip,
      userAgent: opts.info.userAgent?.slice(0, 1000) ?? null,
      device: opts.device,
      fingerprint: d.fingerprinting ? fingerprintOf(opts.info.userAgent) : null,
    })
    await opts.alsoCommit?.(tx, id)
  })
  // Committed: the session exists and counts against the limit, so its cookie must reach
  // the user whatever Redis does now. What follows repairs itself when it fails: the
  // session's first request puts it on the deadline lists, the repair pass finishes the
  // endings.
  await bestEffort(d.log, 'the follow-up of a login', async () => {
    await s.afterEnd(ended)
    // Login is activity: it puts the session on the sweep's deadline lists at once.
    const now = Date.now()
    await d.store.recordActivity(
      { id, expiresAt: expiresAt.getTime() },
      { now, at: now, idleTimeoutMs: settings.idleTimeoutSeconds * 1000, fallback: now, write: true },
    )
    await d.store.scheduleLifetime(id, expiresAt.getTime())
    await d.bus.startLog(id, expiresAt)
    await d.bus.publishAdminChange([id])
  })
  return { id, token, expiresAt, ended }
}

/**
 * The user's active sessions, least recently active first, by their hot last activity.
 * Sessions already past a deadline are ended here with their expiry reason (collected
 * into `ended`) and do not count against the limit.
 */
export async function liveSessionsOf(d: Pick<OpenDeps, 'store' | 'audit'>, tx: Queryable, userId: number, settings: Settings, ended: EndedSession[]) {
  const rows = await d.store.activeSessionIdsOfUser(tx, userId)
  const presence = await d.store.presenceOf(rows.map((r) => r.id))
  const now = Date.now()
  const withActivity = rows.map((r) => ({ ...r, lastActivity: Math.max(r.lastActivity, presence.get(r.id)?.lastActivity ?? 0) }))
  const over: Record<ExpiryReason, string[]> = { lifetime: [], idle_timeout: [] }
  for (const r of withActivity) {
    const reason = expiryReason(r, settings.idleTimeoutSeconds * 1000, now)
    if (reason) over[reason].push(r.id)
  }
  for (const reason of ['lifetime', 'idle_timeout'] as const) {
    ended.push(...(await d.store.markEnded(tx, over[reason], reason, { audit: d.audit.enabled })))
  }
  const gone = new Set([...over.lifetime, ...over.idle_timeout])
  return withActivity.filter((r) => !gone.has(r.id)).sort((a, b) => a.lastActivity - b.lastActivity || a.createdAt - b.createdAt)
}
