import { AppError } from '../infra/errors.js'

export const EXPIRY_REASONS = ['idle_timeout', 'lifetime'] as const
export const TERMINATION_REASONS = [
  'logout',
  'logout_all',
  'admin',
  'session_limit',
  'compromised',
  'password_changed',
  'revoked_by_user',
  'user_disabled',
] as const
export type EndReason = (typeof EXPIRY_REASONS)[number] | (typeof TERMINATION_REASONS)[number]

const END_REASONS: readonly string[] = [...EXPIRY_REASONS, ...TERMINATION_REASONS]

/** A stored end_reason as the reason it names (null for none, or for one this code does not know). */
export function endReasonOf(stored: string | null): EndReason | null {
  return stored !== null && isEndReason(stored) ? stored : null
}

function isEndReason(text: string): text is EndReason {
  return END_REASONS.includes(text)
}

/**
 * A 401 about the session cookie itself (UNAUTHENTICATED, SESSION_EXPIRED,
 * SESSION_TERMINATED): the response clears the cookie, wherever it was thrown. Other 401s
 * (a wrong current password, a bad metrics token) leave the cookie alone.
 */
export class SessionRefused extends AppError {}

export const unauthenticated = () => new SessionRefused(401, 'UNAUTHENTICATED', 'Sign in to continue.')

/**
 * The 401 for a token whose session has ended. A termination carries the `note` its tabs'
 * `session.terminated` carried (an administrator's reason), so a tab that learns of the
 * ending from a refusal tells its user the same as one that got the event.
 */
export function sessionEnded(reason: EndReason, note?: string | null): SessionRefused {
  if ((EXPIRY_REASONS as readonly string[]).includes(reason)) {
    const why = reason === 'lifetime' ? 'reached its maximum lifetime' : 'was idle for too long'
    return new SessionRefused(401, 'SESSION_EXPIRED', `Your session ${why}; sign in again.`, { reason })
  }
  const message = `Your session was ended (${reason.replaceAll('_', ' ')}); sign in again.`
  return new SessionRefused(401, 'SESSION_TERMINATED', message, { reason, ...(note ? { note } : {}) })
}

export const sessionNotFound = () => new AppError(404, 'SESSION_NOT_FOUND', 'No such session.')
export const csrfInvalid = () =>
  new AppError(403, 'CSRF_INVALID', 'Missing or wrong X-CSRF-Token header; fetch one from GET /api/auth/csrf.')
export const forbidden = () => new AppError(403, 'FORBIDDEN', 'You do not have permission to do this.')
