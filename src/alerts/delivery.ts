// The alert-delivery job: POSTs the alert to ALERT_WEBHOOK_URL (signed) and mails it when
// SMTP_URL and ALERT_EMAIL_TO are set. A failed sink throws, so BullMQ retries the job with
// backoff; a sink that already took the alert is recorded in the job's data and skipped
// on the retry. A crash between a send and that record can repeat a send: receivers
// deduplicate by the delivery id (`X-Tessera-Delivery`), the same across every attempt.
import { createHmac } from 'node:crypto'
import { createTransport } from 'nodemailer'
import type { Config } from '../config.js'
import type { Alert } from './schemas.js'

export type Sink = 'webhook' | 'email'

export interface AlertJob {
  /** the alert as raised: every attempt sends the same body (and so the same signature) */
  alert: Alert
  /** sinks that already took this alert */
  sent: Partial<Record<Sink, true>>
}

/** The idempotency key of one alert's delivery; also its BullMQ job id. */
export const deliveryId = (alertId: number) => `alert-${alertId}`

/** `sha256=<hex HMAC-SHA256 of the raw body>`, as in `X-Tessera-Signature`. */
export function signatureOf(key: string, body: string): string {
  return `sha256=${createHmac('sha256', key).update(body).digest('hex')}`
}

/** ALERT_WEBHOOK_SECRET, else a key derived from the session secret (stable across restarts and nodes). */
export function webhookKeyOf(secrets: { webhookSecret?: string; sessionSecret: string }): string {
  return secrets.webhookSecret ?? createHmac('sha256', secrets.sessionSecret).update('alert-webhook').digest('hex')
}

export interface DeliveryOptions {
  webhookUrl?: string
  webhookKey: string
  smtpUrl?: string
  emailTo?: string
  emailFrom: string
  /** per webhook request and per SMTP step */
  timeoutMs?: number
}

export function deliveryOptions(config: Config, sessionSecret: string): DeliveryOptions {
  const { webhookUrl, webhookSecret, smtpUrl, emailTo } = config.alerts
  return {
    webhookUrl,
    webhookKey: webhookKeyOf({ webhookSecret, sessionSecret }),
    smtpUrl,
    emailTo,
    emailFrom: `Tessera alerts <alerts@${new URL(config.publicUrl).hostname}>`,
  }
}

/** Whether any sink is configured (else alerts are not queued at all). */
export function hasSinks(config: Config): boolean {
  return Boolean(config.alerts.webhookUrl || (config.alerts.smtpUrl && config.alerts.emailTo))
}

/** What the job needs from a BullMQ Job. */
export interface DeliveryJob {
  data: AlertJob
  updateData(data: AlertJob): Promise<void>
}

export class AlertDelivery {
  private readonly timeoutMs: number

  constructor(private readonly o: DeliveryOptions) {
    this.timeoutMs = o.timeoutMs ?? 10_000
  }

  get sinks(): Sink[] {
    const sinks: Sink[] = []
    if (this.o.webhookUrl) sinks.push('webhook')
    if (this.o.smtpUrl && this.o.emailTo) sinks.push('email')
    return sinks
  }

  async process(job: DeliveryJob): Promise<{ sent: Sink[] }> {
    const { alert } = job.data
    const sent = { ...job.data.sent }
    const failures: string[] = []
    for (const sink of this.sinks.filter((s) => !sent[s])) {
      try {
        await (sink === 'webhook' ? this.post(alert) : this.mail(alert))
        sent[sink] = true
        await job.updateData({ ...job.data, sent })
      } catch (err) {
        failures.push(`${sink}: ${(err as Error).message}`)
      }
    }
    if (failures.length > 0) throw new Error(`alert ${alert.id} not delivered (${failures.join('; ')})`)
    return { sent: Object.keys(sent) as Sink[] }
  }

  private async post(alert: Alert): Promise<void> {
    const body = JSON.stringify(alert)
    const res = await fetch(this.o.webhookUrl!, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'Tessera-Alerts',
        'x-tessera-event': 'alert',
        'x-tessera-delivery': deliveryId(alert.id),
        'x-tessera-signature': signatureOf(this.o.webhookKey, body),
      },
      body,
      // A redirect would turn the POST into something else: it counts as a failure.
      redirect: 'manual',
      signal: AbortSignal.timeout(this.timeoutMs),
    })
    await res.body?.cancel()
    if (res.status < 200 || res.status >= 300) throw new Error(`webhook answered ${res.status}`)
  }

  private async mail(alert: Alert): Promise<void> {
    const t = this.timeoutMs
    // One connection per mail (no pool): alerts are rare and nothing stays open to close.
    const transport = createTransport({ url: this.o.smtpUrl!, connectionTimeout: t, greetingTimeout: t, socketTimeout: t })
    await transport.sendMail({
      from: this.o.emailFrom,
      to: this.o.emailTo,
      subject: `[Tessera] ${alert.message}`.replace(/[\r\n]+/g, ' ').slice(0, 200),
      text: mailText(alert),
      headers: { 'X-Tessera-Delivery': deliveryId(alert.id) },
    })
  }
}

function mailText(a: Alert): string {
  const details = Object.entries(a.data).map(([k, v]) => `  ${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`)
  return [
    a.message,
    '',
    `Type:      ${a.type}`,
    `User:      ${a.username}${a.userId !== null ? ` (id ${a.userId})` : ' (no such account)'}`,
    `Raised at: ${a.createdAt}`,
    `Alert:     ${a.id} (delivery ${deliveryId(a.id)})`,
    '',
    'Details:',
    ...details,
    '',
    `Acknowledge it with POST /admin/alerts/${a.id}/ack.`,
    '',
  ].join('\n')
}
