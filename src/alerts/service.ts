// Alerts: raised where something looks like abuse (login, session checks), stored once per
// type, user and window (a window opens with the first alert), pushed at once to every node's admin tabs, and handed to the
// alert-delivery job (webhook, email): an alert stored but not yet queued is marked
// pending, and the repair pass of the sweep job queues it.
import { and, asc, desc, eq, isNotNull, isNull, lt, type SQL, sql } from 'drizzle-orm'
import type { Redis } from 'ioredis'
import { alerts } from '../../db/schema.js'
import type { Audit } from '../audit/service.js'
import type { Db } from '../infra/db.js'
import type { InfraKeys } from '../infra/keys.js'
import type { AlertKeys } from './keys.js'
import { bestEffort, count, loggable } from '../infra/errors.js'
import type { AlertInput, AlertRaiser, Subject } from '../sessions/alert-raiser.js'
import type { Device } from '../sessions/tokens.js'
import type { Settings } from '../settings/schemas.js'
import { type AlertJob, deliveryId } from './delivery.js'
import { alertNotFound } from './errors.js'
import { ALERT_TYPES, type Alert, type AlertType } from './schemas.js'
import { SERVER_MESSAGES } from '../realtime/protocol.js'

/** The input type lives with the raise points (sessions/alert-raiser.ts). */
export type { AlertInput } from '../sessions/alert-raiser.js'

export interface AlertsDeps {
  db: Db
  redis: Redis
  keys: InfraKeys & AlertKeys
  settings: { get(): Promise<Settings> }
  audit: Audit
  log: { warn(obj: object, msg: string): void }
  /** The alert-delivery queue; absent when no sink (webhook, email) is configured. */
  queue?: { enqueueAlert(jobId: string, data: AlertJob): Promise<void> }
}

export interface AlertQuery {
  type?: AlertType
  acknowledged?: boolean
  limit: number
  /** only alerts older than this id (the page before it) */
  before?: number
}

const FINGERPRINT_WINDOW_SECONDS = 3600

/** An alert pending this long is the repair pass's: a younger one may still be on its way to the queue. */
const REPAIR_AFTER_SECONDS = 5
const REPAIR_BATCH = 100

/** The dedupe window of a type: the settings' window of whatever counted it. */
export function windowSecondsOf(type: AlertType, s: Settings): number {
  switch (type) {
    case 'failed_login_threshold':
    case 'account_locked':
      return s.failedLogin.windowSeconds
    case 'multiple_ips':
    case 'new_device':
      return s.anomaly.windowHours * 3600
    case 'fingerprint_mismatch':
      return FINGERPRINT_WINDOW_SECONDS
  }
}

/** Type and user of an alert: at most one alert per window for each. */
export function dedupeSubjectOf(input: Subject & { type: AlertType }): string {
  const who = input.userId !== null ? `user:${input.userId}` : `name:${input.username.toLowerCase()}`
  return `${input.type}:${who}`
}

const span = (seconds: number) => (seconds % 3600 === 0 ? `${seconds / 3600} h` : seconds % 60 === 0 ? `${seconds / 60} min` : `${seconds} s`)

function deviceText(d: Device) {
  return [d.browser ?? 'unknown browser', d.os ? `on ${d.os}` : null].filter(Boolean).join(' ')
}

/** One sentence an administrator can act on. Names are JSON-quoted: they may hold anything. */
export function messageOf(input: AlertInput): string {
  const who = JSON.stringify(input.username)
  const from = (ip: string | null) => (ip ? ` from ${ip}` : '')
  switch (input.type) {
    case 'failed_login_threshold':
      return `${count(input.data.failures, 'failed sign-in')} for ${who} within ${span(input.data.windowSeconds)}${from(input.data.ip)}`
    case 'account_locked':
      return `${who} is locked until ${input.data.until} after ${count(input.data.failures, 'failed sign-in')}`
    case 'multiple_ips':
      return `${who} signed in from ${input.data.distinctIps} or more IP addresses within ${input.data.windowHours} h (latest${from(input.data.ip)})`
    case 'new_device':
      return `${who} signed in from a new device or IP address: ${deviceText(input.data.device)}${from(input.data.ip)}`
    case 'fingerprint_mismatch':
      return `A session of ${who} was used from another browser${from(input.data.ip)} and has been ended`
  }
}

export type AlertRow = typeof alerts.$inferSelect

/** The stored type as one of ALERT_TYPES (only this service writes the column, from that list). */
function alertTypeOf(stored: string): AlertType {
  const type = ALERT_TYPES.find((t) => t === stored)
  if (type === undefined) throw new Error(`alerts.type holds ${JSON.stringify(stored)}, which is not an alert type`)
  return type
}

export function toAlert(r: AlertRow): Alert {
  return {
    id: r.id,
    type: alertTypeOf(r.type),
    userId: r.userId,
    username: r.username,
    message: r.message,
    data: r.data ?? {},
    createdAt: r.createdAt.toISOString(),
    acknowledged: r.acknowledgedAt !== null,
    acknowledgedAt: r.acknowledgedAt?.toISOString() ?? null,
    acknowledgedBy: r.acknowledgedBy,
  }
}

export class Alerts implements AlertRaiser {
  constructor(private readonly d: AlertsDeps) {}

  /** Like create, for raise points: a failure is logged and answered with null. */
  async raise(input: AlertInput): Promise<Alert | null> {
    try {
      return await this.create(input)
    } catch (err) {
      this.d.log.warn({ err: loggable(err), type: input.type, userId: input.userId }, 'alert could not be raised')
      return null
    }
  }

  /**
   * Stores the alert unless its type and user already had one within the window (then null).
   * The window opens with the first alert (a Redis key set NX with the window as its TTL,
   * so every node agrees): raises either side of any clock boundary are still one alert. A
   * new alert is queued for delivery (job id = delivery id, so it is delivered once) and
   * published to every node's admin tabs.
   */
  async create(input: AlertInput): Promise<Alert | null> {
    const { db, redis, keys } = this.d
    const subject = dedupeSubjectOf(input)
    const windowSeconds = windowSecondsOf(input.type, await this.d.settings.get())
    const openedAt = Date.now()
    const window = keys.alertWindow(subject)
    if ((await redis.set(window, String(openedAt), 'EX', windowSeconds, 'NX')) !== 'OK') return null
    let row: AlertRow | undefined
    try {
      ;[row] = await db
        .insert(alerts)
        .values({
          type: input.type,
          userId: input.userId,
          username: input.username.slice(0, 200),
          message: messageOf(input),
          data: input.data,
          dedupeKey: `${subject}:${openedAt}`,
          deliveryPending: this.d.queue !== undefined,
        })
        .onConflictDoNothing({ target: alerts.dedupeKey })
        .returning()
    } catch (err) {
      // Not stored: the next raise may try again instead of the window staying silent.
      await redis.unlink(window).catch(() => {})
      throw err
    }
    if (!row) return null
    const alert = toAlert(row)
    // Stored as pending: should the enqueue fail now (Redis away, the process gone), the
    // repair pass queues it (repairDeliveries).
    await bestEffort(this.d.log, "queueing an alert's delivery", () => this.queueDelivery(alert))
    await this.d.redis.publish(this.d.keys.adminAlerts, JSON.stringify({ type: SERVER_MESSAGES.adminAlert, alert, at: new Date().toISOString() }))
    return alert
  }

  /** Queues the alert's delivery (once: the job id is its delivery id), then records it queued. */
  private async queueDelivery(alert: Alert): Promise<void> {
    if (!this.d.queue) return
    await this.d.queue.enqueueAlert(deliveryId(alert.id), { alert, sent: {} })
    await this.d.db.update(alerts).set({ deliveryPending: false }).where(eq(alerts.id, alert.id))
  }

  /** The repair pass: queues the delivery of alerts stored a while ago and never queued; returns how many. */
  async repairDeliveries(): Promise<number> {
    if (!this.d.queue) return 0
    const rows = await this.d.db
      .select()
      .from(alerts)
      .where(and(sql`${alerts.deliveryPending}`, lt(alerts.createdAt, sql`now() - make_interval(secs => ${REPAIR_AFTER_SECONDS})`)))
      .orderBy(asc(alerts.createdAt))
      .limit(REPAIR_BATCH)
    for (const row of rows) await this.queueDelivery(toAlert(row))
    return rows.length
  }

  /** Newest first; one more row than asked tells whether a next page exists. */
  async list(q: AlertQuery): Promise<{ items: Alert[]; more: boolean }> {
    const where: SQL[] = []
    if (q.type !== undefined) where.push(eq(alerts.type, q.type))
    if (q.acknowledged === true) where.push(isNotNull(alerts.acknowledgedAt))
    if (q.acknowledged === false) where.push(isNull(alerts.acknowledgedAt))
    if (q.before !== undefined) where.push(lt(alerts.id, q.before))
    const rows = await this.d.db
      .select()
      .from(alerts)
      .where(and(...where))
      .orderBy(desc(alerts.id))
      .limit(q.limit + 1)
    return { items: rows.slice(0, q.limit).map(toAlert), more: rows.length > q.limit }
  }

  /** Idempotent: the first acknowledgement stands (and alone is audited). */
  async acknowledge(id: number, actorUserId: number): Promise<Alert> {
    const { db } = this.d
    const [updated] = await db
      .update(alerts)
      .set({ acknowledgedAt: sql`now()`, acknowledgedBy: actorUserId })
      .where(and(eq(alerts.id, id), isNull(alerts.acknowledgedAt)))
      .returning()
    if (updated) {
      const alert = toAlert(updated)
      await this.d.audit.record({ type: 'alert.acknowledged', actorUserId, userId: alert.userId, data: { alertId: alert.id, alertType: alert.type } })
      return alert
    }
    const [row] = await db.select().from(alerts).where(eq(alerts.id, id))
    if (!row) throw alertNotFound()
    return toAlert(row)
  }
}
