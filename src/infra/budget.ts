// A rate-limit budget's counter and answer, shared by the app-wide limits (auth/rate-limits.ts)
// and session_state, which spends the API budget in its own Redis step (sessions/state-read.ts).
import type { FastifyReply } from 'fastify'
import type { Redis, Result } from 'ioredis'
import { AppError, count } from './errors.js'
import type { InfraKeys } from './keys.js'

/** The API budget's counter: the session's (in its slot, keys.ts) when the token names one, else the address's. */
export const apiBudgetKey = (keys: InfraKeys, by: { sessionId: string } | { ip: string }) =>
  'sessionId' in by ? keys.sessionBudget(by.sessionId) : `${keys.rateLimit}api:ip:${by.ip}`

// spend(counter, window ms) counts one request: requests in the window, ms left of it. A
// function, so that the scripts that spend the API budget in the same step as their reads
// (sessions/session-state.lua.ts, sessions/store.lua.ts) count exactly as this one does.
export const spendChunk = `
local function spend(budget, window)
  local count = redis.call('INCR', budget)
  if count == 1 then
    redis.call('PEXPIRE', budget, window)
    return count, tonumber(window)
  end
  return count, redis.call('PTTL', budget)
end
`

// KEYS: the counter; ARGV: window ms. Returns { requests in the window, ms left of it }.
const spendLua = `${spendChunk}
local count, ttl = spend(KEYS[1], ARGV[1])
return {count, ttl}
`

declare module 'ioredis' {
  interface RedisCommander<Context> {
    /** spendLua, defined by defineBudgetCommand: the budget's count and milliseconds left. */
    tesseraSpendBudget(key: string, windowMs: number): Result<[number, number], Context>
  }
}

/** Makes spendBudget available on this connection. */
export function defineBudgetCommand(redis: Redis): void {
  redis.defineCommand('tesseraSpendBudget', { numberOfKeys: 1, lua: spendLua })
}

/** Spends one request of the budget under `key`: { requests in the window, ms left of it }. */
export function spendBudget(redis: Redis, key: string, windowMs: number): Promise<[number, number]> {
  return redis.tesseraSpendBudget(key, windowMs)
}

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
