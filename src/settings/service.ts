// The runtime Settings record: one versioned row in PostgreSQL, read through a short
// in-process cache so that a change made on any node is in force everywhere within 1 s.
import { eq } from 'drizzle-orm'
import { settings as settingsTable } from '../../db/schema.js'
import type { InitialSettings } from '../config.js'
import type { Audit } from '../audit/service.js'
import { ROLES } from './roles.js'
import type { Db } from '../infra/db.js'
import { dependencyFailure } from '../infra/errors.js'
import { timeoutNotAfterIdle, unknownRole, versionConflict, warningNotBeforeTimeout } from './errors.js'
import type { Settings, SettingsPatch, SettingsValues } from './schemas.js'

// Half the 1 s promise, so a change is in force everywhere with room to spare.
const FRESH_MS = 500

export class SettingsService {
  private cached: { value: Settings; loadedAt: number } | undefined
  private loading: Promise<Settings> | undefined

  constructor(
    private readonly db: Db,
    private readonly audit: Audit,
    private readonly initial: InitialSettings,
  ) {}

  /**
   * The settings in force; at most one second old. While PostgreSQL cannot be reached the
   * last copy read stays in force, and the record is read again every FRESH_MS until it can.
   */
  async get(): Promise<Settings> {
    if (this.cached && Date.now() - this.cached.loadedAt < FRESH_MS) return this.cached.value
    this.loading ??= this.load()
      .catch((err) => {
        if (!this.cached || !dependencyFailure(err)) throw err
        this.cached = { value: this.cached.value, loadedAt: Date.now() }
        return this.cached.value
      })
      .finally(() => {
        this.loading = undefined
      })
    return this.loading
  }

  /** Creates the record from the environment's initial values the first time. */
  async ensure(): Promise<void> {
    await this.db
      .insert(settingsTable)
      .values({ id: 1, data: this.initial, version: 1 })
      .onConflictDoNothing()
  }

  private async load(): Promise<Settings> {
    let [row] = await this.db.select().from(settingsTable).where(eq(settingsTable.id, 1))
    if (!row) {
      await this.ensure()
      ;[row] = await this.db.select().from(settingsTable).where(eq(settingsTable.id, 1))
    }
    const value = toSettings(row!)
    this.cached = { value, loadedAt: Date.now() }
    return value
  }

  async update(patch: SettingsPatch, actorUserId: number): Promise<Settings> {
    return (await this.change(patch, actorUserId)).after
  }

  /**
   * Applies a partial change. `before` and `after` are this change's own, read under the
   * row lock (never a cached copy). A patch that changes nothing saves nothing: no new
   * version, no audit event (`changed` is false and `after` is the current record).
   */
  async change(patch: SettingsPatch, actorUserId: number): Promise<{ before: Settings; after: Settings; changed: boolean }> {
    const { expectedVersion, ...changes } = patch
    await this.ensure()
    const result = await this.db.transaction(async (tx) => {
      const [row] = await tx.select().from(settingsTable).where(eq(settingsTable.id, 1)).for('update')
      const before = toSettings(row!)
      if (expectedVersion !== undefined && expectedVersion !== before.version) {
        throw versionConflict(before)
      }
      const after = merge(valuesOf(before), changes)
      checkConsistency(after)
      if (canonical(after) === canonical(valuesOf(before))) return { before, after: before, changed: false }
      const [saved] = await tx
        .update(settingsTable)
        .set({ data: after, version: before.version + 1, updatedAt: new Date(), updatedBy: actorUserId })
        .where(eq(settingsTable.id, 1))
        .returning()
      return { before, after: toSettings(saved!), changed: true }
    })
    this.cached = { value: result.after, loadedAt: Date.now() }
    if (!result.changed) return result
    await this.audit.record({
      type: 'settings.changed',
      actorUserId,
      data: { before: valuesOf(result.before), after: valuesOf(result.after), version: result.after.version },
    })
    return result
  }
}

function toSettings(row: typeof settingsTable.$inferSelect): Settings {
  return {
    ...row.data,
    version: row.version,
    updatedAt: row.updatedAt.toISOString(),
    updatedBy: row.updatedBy ?? null,
  }
}

export function valuesOf(s: Settings): SettingsValues {
  const { version: _v, updatedAt: _u, updatedBy: _b, ...values } = s
  return values
}

function merge(base: SettingsValues, patch: Omit<SettingsPatch, 'expectedVersion'>): SettingsValues {
  return {
    ...base,
    ...stripUndefined(patch),
    concurrentLimits: { ...base.concurrentLimits, ...stripUndefined(patch.concurrentLimits ?? {}) },
    failedLogin: { ...base.failedLogin, ...stripUndefined(patch.failedLogin ?? {}) },
    anomaly: { ...base.anomaly, ...stripUndefined(patch.anomaly ?? {}) },
  }
}

/** JSON with object keys sorted, so that equal values compare equal whatever their key order. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1))) : v,
  )
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}

function checkConsistency(s: SettingsValues) {
  if (s.idleTimeoutSeconds <= s.idleAfterSeconds) {
    throw timeoutNotAfterIdle(s.idleTimeoutSeconds, s.idleAfterSeconds)
  }
  if (s.idleWarningSeconds >= s.idleTimeoutSeconds) {
    throw warningNotBeforeTimeout(s.idleWarningSeconds, s.idleTimeoutSeconds)
  }
  for (const role of Object.keys(s.concurrentLimits.byRole)) {
    if (!ROLES.some((r) => r === role)) {
      throw unknownRole(role, ROLES)
    }
  }
}

/** The concurrent-session limit of one user: by user, else by role, else the default. */
export function sessionLimitFor(s: Settings, userId: number, role: string): number {
  return s.concurrentLimits.byUser[String(userId)] ?? s.concurrentLimits.byRole[role] ?? s.concurrentLimits.default
}

export function failedLoginThresholdFor(s: Settings, userId: number): number {
  return s.failedLogin.byUser[String(userId)] ?? s.failedLogin.threshold
}
