// Which deadline ended a session. Every path that ends sessions by time (the sweep, the
// cleanup, a request, a login counting sessions) asks this one function, so the reason
// never depends on which of them saw it first.

export type ExpiryReason = 'lifetime' | 'idle_timeout'

/**
 * The expiry reason of a session at `now`, or null while both deadlines lie ahead. When
 * both have passed, the one that passed first decides (a tie counts as lifetime).
 * The lifetime deadline is `expiresAt`; the idle deadline is `lastActivity + idleTimeoutMs`.
 */
export function expiryReason(s: { expiresAt: number; lastActivity: number }, idleTimeoutMs: number, now: number): ExpiryReason | null {
  const idleDeadline = s.lastActivity + idleTimeoutMs
  if (now < s.expiresAt && now < idleDeadline) return null
  if (now < s.expiresAt) return 'idle_timeout'
  if (now < idleDeadline) return 'lifetime'
  return idleDeadline < s.expiresAt ? 'idle_timeout' : 'lifetime'
}
