// Signing in: password check, failed-login counting and lockout, the session limit, and
// the login history row that every attempt leaves behind.
import { eq, sql } from 'drizzle-orm'
import type { Redis, Result } from 'ioredis'
import { loginAttempts, users } from '../../db/schema.js'
import type { AlertRaiser } from '../sessions/alert-raiser.js'
import type { Audit } from '../audit/service.js'
import { type Db, executePrepared, type Queryable } from '../infra/db.js'
import { AppError, bestEffort, type WarnLog } from '../infra/errors.js'
import { accountLocked, invalidCredentials, platformNotUsable } from './errors.js'
import type { AuthKeys } from './keys.js'
import type { Metrics } from '../infra/metrics.js'
import type { EventBus } from '../infra/bus.js'
import type { Platforms } from '../platforms/service.js'
import { flagSessionIn } from '../sessions/detail.js'
import { CredentialsChanged } from '../sessions/login-lock.js'
import type { RequestInfo } from '../sessions/records.js'
import type { Sessions } from '../sessions/service.js'
import { type Device, deviceKey, parseDevice } from '../sessions/tokens.js'
import type { Settings } from '../settings/schemas.js'
import { failedLoginThresholdFor, type SettingsService } from '../settings/service.js'
import { verifyPassword } from './passwords.js'
import { findUserByUsername, type UserRow } from './users.js'
import { SERVER_MESSAGES } from '../realtime/protocol.js'

export interface LoginDeps {
  db: Db
  redis: Redis
  keys: AuthKeys
  metrics: Metrics
  audit: Audit
  bus: EventBus
  settings: SettingsService
  sessions: Sessions
  platforms: Platforms
  /** Raises failed-login, lockout and anomaly alerts (never throws); none when absent. */
  alerts?: AlertRaiser
  log: WarnLog
}

/** How the user proved who they are; written to login history as `method`. */
export type LoginMethod = 'password' | 'oidc'

/** Who tried to sign in, from where: what every login history row says. */
export interface Attempt {
  username: string
  userId: number | null
  info: RequestInfo
  device: Device
}

export interface LoginInput {
  username: string
  password: string
  platformId?: number
  endSessionId?: string
}

const lockoutFromNow = (settings: Settings) => new Date(Date.now() + settings.failedLogin.lockoutSeconds * 1000)

// Counts a failure and, when the count reaches the threshold, begins the lockout: in one
// step, so that of failures reaching it at once exactly one begins it. The mark says that a
// lockout has begun (for an unknown name it is the lockout; a known account's is also in
// PostgreSQL), and the count starts afresh once it is over.
// KEYS: failure count, lockout mark; ARGV: window seconds, threshold, lockout ms (0: lockout off).
// Returns { failures in the window, 1 when this failure began the lockout }.
const countFailureLua = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
if n >= tonumber(ARGV[2]) and tonumber(ARGV[3]) > 0 and redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[3]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {n, 1}
end
return {n, 0}
`

declare module 'ioredis' {
  interface RedisCommander<Context> {
    /** countFailureLua, defined by Login: the failures in the window, and 1 when this one began the lockout. */
    tesseraCountFailure(failures: string, locked: string, windowSeconds: number, threshold: number, lockoutMs: number): Result<[number, number], Context>
  }
}

export class Login {
  constructor(private readonly d: LoginDeps) {
    d.redis.defineCommand('tesseraCountFailure', { numberOfKeys: 2, lua: countFailureLua })
  }

  async login(input: LoginInput, info: RequestInfo) {
    const user = await findUserByUsername(this.d.db, input.username)
    const settings = await this.d.settings.get()
    const device = parseDevice(info.userAgent)
    const attempt = { username: input.username.slice(0, 200), userId: user?.id ?? null, info, device }

    const lockedUntil = await this.lockedUntil(user, input.username)
    if (lockedUntil) throw await this.lockedOut(attempt, lockedUntil)

    const passwordOk = await verifyPassword(user?.passwordHash ?? null, input.password)
    // Judged again against the lockout as it is now that the password is checked: guesses
    // sent at once all passed the check above before any of them failed, and one that comes
    // back after their failures began a lockout must learn nothing, right or wrong.
    const begun = await this.lockoutBegun(input.username)
    if (begun) throw await this.lockedOut(attempt, begun)
    if (!user || !passwordOk || user.disabled) {
      const reason = !user ? 'unknown_user' : !passwordOk ? 'wrong_password' : 'user_disabled'
      await this.record({ ...attempt, success: false, reason })
      await this.d.audit.record({ type: 'login.failed', userId: user?.id ?? null, data: { username: attempt.username, reason, ip: info.ip } })
      this.d.metrics.logins.inc({ result: 'failure' })
      if (reason !== 'user_disabled') {
        const lock = await this.countFailure(user, input.username, settings, info.ip)
        if (lock) throw accountLocked(lock)
      }
      throw invalidCredentials()
    }
    // The right password: the failures so far are forgotten.
    await this.d.redis.unlink(this.d.keys.failedLogins(input.username))
    return this.openFor(user, input, attempt, settings, 'password')
  }

  /**
   * Opens a session for a user whose identity is proven (by password or by an identity
   * provider's token): the session limit, the login history row (with `method`), the
   * anomaly flags and alerts, and the notice to the user's other sessions.
   */
  async openFor(user: UserRow, input: Pick<LoginInput, 'platformId' | 'endSessionId'>, attempt: Attempt, settings: Settings, method: LoginMethod) {
    const { info, device } = attempt
    const platformId = await this.startingPlatform(user.id, input.platformId)
    let opened: Awaited<ReturnType<Sessions['open']>>
    let flags: string[] = []
    let firstSignIn = false
    try {
      // The session, its login record and its audit event commit together: PostgreSQL going
      // away mid-login leaves all of them or none (R3), never a session without its history.
      opened = await this.d.sessions.open(user, {
        platformId,
        endSessionId: input.endSessionId,
        info,
        device,
        alsoCommit: async (tx, sessionId) => {
          const found = await this.flagsFor(tx, user.id, info.ip, device, settings)
          flags = found.flags
          firstSignIn = found.firstSignIn
          if (flags.length > 0) await flagSessionIn(tx, sessionId, flags)
          await this.recordSuccess(tx, { ...attempt, sessionId, flags, method })
          await this.d.audit.recordIn(tx, { type: 'session.login', userId: user.id, sessionId, data: { ip: info.ip, device, flags, platformId, method } })
        },
      })
    } catch (err) {
      if (err instanceof AppError && err.code === 'SESSION_LIMIT_REACHED') {
        await this.record({ ...attempt, success: false, reason: 'session_limit', method })
        this.d.metrics.logins.inc({ result: 'blocked' })
      }
      if (err instanceof CredentialsChanged) {
        // The password changed (or the account was disabled) while this login was under way.
        await this.record({ ...attempt, success: false, reason: 'credentials_changed', method })
        this.d.metrics.logins.inc({ result: 'failure' })
        throw invalidCredentials()
      }
      throw err
    }
    this.d.metrics.logins.inc({ result: 'success' })
    const anomaly = { userId: user.id, username: user.username, data: { sessionId: opened.id, ip: info.ip, device } }
    // A user's first sign-in is from a new device by definition: flagged, but no cause for an alert.
    if (flags.includes('new_device') && !firstSignIn) await this.d.alerts?.raise({ ...anomaly, type: 'new_device' })
    if (flags.includes('multiple_ips')) {
      await this.d.alerts?.raise({ ...anomaly, type: 'multiple_ips', data: { ...anomaly.data, ...settings.anomaly } })
    }
    // The session is committed: telling the other sessions must not cost it its cookie.
    await bestEffort(this.d.log, 'the new_login notice', () =>
      this.d.bus.publishUserEvent(user.id, { type: SERVER_MESSAGES.userNotice, kind: 'new_login', device, ip: info.ip, sessionId: opened.id }),
    )
    return { user, opened, flags }
  }

  /** A sign-in refused before a session could open (an identity provider's bad token), in login history. */
  async recordFailure(attempt: Attempt, reason: string, method: LoginMethod): Promise<void> {
    await this.record({ ...attempt, success: false, reason, method })
    this.d.metrics.logins.inc({ result: 'failure' })
  }

  /** Refuses a sign-in to an account that is locked or disabled, whatever proved who it is. */
  async refuseLockedOrDisabled(user: UserRow, attempt: Attempt, method: LoginMethod): Promise<void> {
    const until = await this.lockedUntil(user, user.username)
    if (until) throw await this.lockedOut(attempt, until, method)
    if (user.disabled) {
      await this.recordFailure(attempt, 'user_disabled', method)
      throw invalidCredentials()
    }
  }

  /**
   * A sign-in refused by the login rate limit before its password was looked at: still an
   * attempt in login history (reason `rate_limited`), with the username when the body had one.
   */
  async recordRateLimited(username: string | null, info: RequestInfo): Promise<void> {
    const name = (username ?? '').slice(0, 200)
    const user = name ? await findUserByUsername(this.d.db, name) : null
    await this.record({ username: name, userId: user?.id ?? null, info, device: parseDevice(info.userAgent), success: false, reason: 'rate_limited' })
    this.d.metrics.logins.inc({ result: 'rate_limited' })
  }

  /** A sign-in refused by a lockout, in login history. */
  private async lockedOut(attempt: Attempt, until: Date, method: LoginMethod = 'password'): Promise<AppError> {
    await this.record({ ...attempt, success: false, reason: 'locked', method })
    this.d.metrics.logins.inc({ result: 'locked' })
    return accountLocked(until)
  }

  /** When the account (or, for unknown names, the name) is locked, until when. */
  private async lockedUntil(user: UserRow | null, username: string): Promise<Date | null> {
    if (user) return user.lockedUntil && user.lockedUntil.getTime() > Date.now() ? user.lockedUntil : null
    return this.lockoutBegun(username)
  }

  /** Until when the name is locked, by the mark of the failure that began its lockout, or null. */
  private async lockoutBegun(username: string): Promise<Date | null> {
    const ttl = await this.d.redis.pttl(this.d.keys.lockedName(username))
    return ttl > 0 ? new Date(Date.now() + ttl) : null
  }

  /**
   * Counts a failure in the window. Unknown names are counted and locked too, so a
   * lockout never tells whether an account exists. Returns the lockout end when the name
   * is now locked: by this failure, or by another one that reached the threshold with it.
   */
  private async countFailure(user: UserRow | null, username: string, settings: Settings, ip: string | null): Promise<Date | null> {
    const { failedLogin } = settings
    const threshold = user ? failedLoginThresholdFor(settings, user.id) : failedLogin.threshold
    const lockoutMs = failedLogin.lockoutEnabled ? failedLogin.lockoutSeconds * 1000 : 0
    const [count, began] = await this.d.redis.tesseraCountFailure(
      this.d.keys.failedLogins(username),
      this.d.keys.lockedName(username),
      failedLogin.windowSeconds,
      threshold,
      lockoutMs,
    )
    if (count < threshold) return null
    const subject = { userId: user?.id ?? null, username: user?.username ?? username }
    // Raised as the count reaches the threshold, not for each failure past it; a lockout
    // that begins past it (the threshold was lowered meanwhile) raises it too (deduplicated).
    if (count === threshold || began === 1) {
      const data = { failures: count, windowSeconds: failedLogin.windowSeconds, ip }
      await this.d.alerts?.raise({ ...subject, type: 'failed_login_threshold', data })
    }
    if (!failedLogin.lockoutEnabled) return null
    // Another failure that reached the threshold at the same time began the lockout.
    if (began !== 1) return (await this.lockoutBegun(username)) ?? lockoutFromNow(settings)
    const until = lockoutFromNow(settings)
    if (user) {
      await this.d.db.update(users).set({ lockedUntil: until }).where(eq(users.id, user.id))
      await this.d.audit.record({ type: 'user.locked', userId: user.id, data: { failures: count, until: until.toISOString() } })
    }
    this.d.metrics.lockouts.inc()
    await this.d.alerts?.raise({ ...subject, type: 'account_locked', data: { failures: count, until: until.toISOString(), ip } })
    return until
  }

  private async startingPlatform(userId: number, requested: number | undefined): Promise<number | null> {
    if (requested === undefined) return this.d.platforms.defaultOf(userId)
    const platform = await this.d.platforms.find(userId, requested)
    if (!platform?.active) throw platformNotUsable()
    return platform.id
  }

  /**
   * `new_device`: a device or IP this user has not signed in from before (the first sign-in
   * too: http.md); `multiple_ips`: many IPs in the window. `firstSignIn`: no success before this.
   */
  private async flagsFor(tx: Queryable, userId: number, ip: string | null, device: Device, settings: Settings): Promise<{ flags: string[]; firstSignIn: boolean }> {
    const t = loginAttempts
    const [row] = await executePrepared<{ anyBefore: boolean; deviceSeen: boolean; ipSeen: boolean; distinctIps: number }>(
      tx,
      sql`
      select
        exists(select 1 from ${t} where ${t.userId} = ${userId} and ${t.success}) as "anyBefore",
        exists(select 1 from ${t} where ${t.userId} = ${userId} and ${t.success} and ${t.deviceKey} = ${deviceKey(device)}) as "deviceSeen",
        exists(select 1 from ${t} where ${t.userId} = ${userId} and ${t.success} and ${t.ip} = ${ip}::inet) as "ipSeen",
        (select count(distinct ip)::int from (
           select ${t.ip} as ip from ${t}
           where ${t.userId} = ${userId} and ${t.success} and ${t.at} > now() - make_interval(hours => ${settings.anomaly.windowHours})
           union select ${ip}::inet) ips) as "distinctIps"`,
      'login_flags',
    )
    const flags: string[] = []
    if (!row?.deviceSeen || !row.ipSeen) flags.push('new_device')
    if ((row?.distinctIps ?? 0) >= settings.anomaly.distinctIps) flags.push('multiple_ips')
    return { flags, firstSignIn: !row?.anyBefore }
  }

  /** The login history row of a sign-in, on the transaction that opens its session. */
  private recordSuccess(tx: Queryable, a: Attempt & { sessionId: string; flags: string[]; method: LoginMethod }) {
    return this.record({ ...a, success: true, reason: 'ok' }, tx)
  }

  private async record(a: Attempt & { success: boolean; reason: string; method?: LoginMethod; sessionId?: string; flags?: string[] }, tx: Queryable = this.d.db) {
    await tx.insert(loginAttempts).values({
      userId: a.userId,
      username: a.username,
      ip: a.info.ip,
      userAgent: a.info.userAgent?.slice(0, 1000) ?? null,
      deviceKey: deviceKey(a.device),
      success: a.success,
      reason: a.reason,
      method: a.method ?? 'password',
      sessionId: a.sessionId ?? null,
      flags: a.flags ?? [],
    })
  }
}
