// Rate limits (docs/api.md, "Rate limits"), counted in Redis so they hold across nodes.
//
// Every budget runs from one app-wide hook, ahead of the routes' own guards: a route's
// `onRequest: requireSession` would otherwise run first, and requests it refuses (401,
// 403 CSRF_INVALID) would never be counted. The plugin's per-route options are not used:
// in @fastify/rate-limit 11.2 each route gets its own Redis namespace, so two routes with
// the same `groupId` still count apart (fastify-rate-limit#463). One limiter per budget,
// shared by its routes, does share.
//
// The API budget is spent by a script of its own rather than the plugin's (the same INCR /
// PEXPIRE), so that session_state can spend it in the same Redis step as its reads
// (sessions/session-state.lua.ts) under the same key (apiBudgetKey: a session's counter is in its slot),
// and, on one Redis, every other route in the same step as the cookie's token lookup (spentWithRecord).
import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { answerBudget, apiBudgetKey, defineBudgetCommand, isRateLimited, rateLimited, spendBudget } from '../infra/budget.js'
import { MAX_TOKEN_LENGTH, SESSION_COOKIE, sessionBehindCookie } from '../sessions/guards.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The budget the route spends: the API's per-session one unless named (both others are per IP). */
    budget?: 'login' | 'uuid'
    /** The route spends the API budget itself, in the same Redis step as its reads (session_state): the hook skips it. */
    inlineBudget?: boolean
  }
}

type Limiter = (req: FastifyRequest, reply: FastifyReply) => Promise<void>

export interface RateLimitHooks {
  /** A login refused by its rate limit, before its password was looked at (login history). */
  onLoginLimited(req: FastifyRequest): Promise<void>
}

/**
 * The API budget is per session, but only for a session the token really names: unknown
 * tokens are counted by IP, so a flood of made-up cookies cannot get a fresh budget each.
 */
async function apiKey(req: FastifyRequest, app: FastifyInstance): Promise<string> {
  const record = await sessionBehindCookie(req, app)
  return apiBudgetKey(app.keys, record ? { sessionId: record.id } : { ip: req.ip })
}

/**
 * On one Redis the cookie's record and its session's budget are one step: the record is kept
 * for the guard (as sessionBehindCookie keeps it) and the budget's [count, ms left] returned.
 * Null, with nothing spent, when the step does not apply (no usable cookie, a token the
 * cache does not hold, a Redis Cluster): then the record is looked up and the budget spent apart.
 */
async function spentWithRecord(req: FastifyRequest, app: FastifyInstance, windowMs: number): Promise<[number, number] | null> {
  const token = req.cookies[SESSION_COOKIE]
  if (!token || token.length > MAX_TOKEN_LENGTH || req.sessionLookup) return null
  const found = await app.sessions.cachedRecordSpending(token, windowMs)
  if (!found) return null
  req.sessionLookup = Promise.resolve(found.record)
  return [found.count, found.ttl]
}

export async function installRateLimits(app: FastifyInstance, hooks: RateLimitHooks) {
  await app.register(rateLimit, {
    global: false,
    redis: app.redis,
    nameSpace: app.keys.rateLimit,
    errorResponseBuilder: (_req, rl) => rateLimited(rl.ttl),
  })
  const { api, uuid, login } = app.config.rateLimits
  const limiter = (budget: { max: number; windowMs: number }, keyGenerator: (req: FastifyRequest) => string | Promise<string>): Limiter => {
    const handler = app.rateLimit({ max: budget.max, timeWindow: budget.windowMs, keyGenerator })
    return async (req, reply) => {
      await handler.call(app, req, reply)
    }
  }
  defineBudgetCommand(app.redis)
  const limiters = {
    api: async (req: FastifyRequest, reply: FastifyReply) => {
      const [count, ttl] = (await spentWithRecord(req, app, api.windowMs)) ?? (await spendBudget(app.redis, await apiKey(req, app), api.windowMs))
      answerBudget(reply, api.max, count, ttl)
    },
    uuid: limiter(uuid, (req) => `uuid:${req.ip}`),
    login: limiter(login, (req) => `login:${req.ip}`),
  }

  app.addHook('onRequest', async (req, reply) => {
    const { config, url } = req.routeOptions
    // Unknown paths (404) and exempt routes (health, metrics, the socket) spend nothing.
    if (url === undefined || config.rateLimit === false || config.budget === 'login' || config.inlineBudget) return
    await limiters[config.budget ?? 'api'](req, reply)
  })

  // Login's budget is checked once the body is parsed, so a refused attempt can be written
  // to login history with the username it tried.
  app.addHook('preValidation', async (req, reply) => {
    if (req.routeOptions.config.budget !== 'login') return
    try {
      await limiters.login(req, reply)
    } catch (err) {
      if (isRateLimited(err)) await hooks.onLoginLimited(req)
      throw err
    }
  })
}
