// What a raise point (sign-in, session checks) hands an alert. The alerts feature, a layer
// above, implements AlertRaiser; sessions and auth are handed it and never import alerts.
import type { Device } from './tokens.js'

export interface Subject {
  /** null when the name has no account (failed sign-ins with unknown names alert too) */
  userId: number | null
  username: string
}

/** What each type carries in `data`; the message is written from it. */
export type AlertInput = Subject &
  (
    | { type: 'failed_login_threshold'; data: { failures: number; windowSeconds: number; ip: string | null } }
    | { type: 'account_locked'; data: { failures: number; until: string; ip: string | null } }
    | { type: 'multiple_ips'; data: { sessionId: string; ip: string | null; distinctIps: number; windowHours: number; device: Device } }
    | { type: 'new_device'; data: { sessionId: string; ip: string | null; device: Device } }
    | { type: 'fingerprint_mismatch'; data: { sessionId: string; ip: string | null; userAgent: string | null } }
  )

/** What a raise point needs. `raise` never rejects: a failure is logged, never the caller's. */
export interface AlertRaiser {
  raise(input: AlertInput): Promise<unknown>
}

/**
 * The raiser sessions and auth are built with. The alerts feature, registered later,
 * connects itself (`connect`); until then (and in a process without it) raising does nothing.
 */
export class AlertRelay implements AlertRaiser {
  private target: AlertRaiser | undefined

  connect(target: AlertRaiser): void {
    this.target = target
  }

  raise(input: AlertInput): Promise<unknown> {
    return this.target ? this.target.raise(input) : Promise.resolve()
  }
}
