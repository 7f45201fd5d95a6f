// Reconnect delays: exponential backoff with full jitter, 0.5 s doubling to 30 s.

export const BACKOFF = { baseMs: 500, capMs: 30_000 } as const

/**
 * The wait before reconnect attempt `attempt` (0 for the first): a random time below
 * min(30 s, 0.5 s · 2^attempt). Full jitter spreads the tabs of a restarted node apart.
 */
export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(BACKOFF.capMs, BACKOFF.baseMs * 2 ** Math.min(Math.max(attempt, 0), 16))
  return Math.floor(random() * ceiling)
}
