// A rate-limit budget's answer, shared by the app-wide limits (auth/rate-limits.ts) and
// session_state, which spends the API budget in its own Redis step (sessions/state-read.ts).
import type { FastifyReply } from 'fastify'
import { AppError, count } from './errors.js'
import type { RedisKeys } from './keys.js'

/** Where the API budget's counters live: this + `s:<session id>` or `ip:<address>`. */
export const apiBudgetPrefix = (keys: RedisKeys) => `${keys.rateLimit}api:`

/** The 429 of a spent budget; `ttlMs` is what is left of its window. */
export function rateLimited(ttlMs: number): AppError {
  const retryAfterSeconds = Math.max(1, Math.ceil(ttlMs / 1000))
  return new AppError(429, 'RATE_LIMITED', `Too many requests; try again in ${count(retryAfterSeconds, 'second')}.`, { retryAfterSeconds })
}

/** The plugin's headers for a request that spent `count` of `max`; throws the 429 past it. */
export function answerBudget(reply: FastifyReply, max: number, count: number, ttlMs: number): void {
  const resetSeconds = Math.ceil(ttlMs / 1000)
  if (count > max) {
    reply.header('x-ratelimit-limit', max).header('x-ratelimit-remaining', 0).header('x-ratelimit-reset', resetSeconds).header('retry-after', resetSeconds)
    throw rateLimited(ttlMs)
  }
  reply.header('x-ratelimit-limit', max).header('x-ratelimit-remaining', max - count).header('x-ratelimit-reset', resetSeconds)
}

export const isRateLimited = (err: unknown) => err instanceof AppError && err.code === 'RATE_LIMITED'
