// Rate limits (http.md, "Rate limits"), counted in Redis so they hold across nodes.
//
// Every budget runs from one app-wide hook, ahead of the routes' own guards: a route's
// `onRequest: requireSession` would otherwise run first, and requests it refuses (401,
// 403 CSRF_INVALID) would never be counted. The plugin's per-route options are not used:
// in @fastify/rate-limit 11.2 each route gets its own Redis namespace, so two routes with
// the same `groupId` still count apart (fastify-rate-limit#463). One limiter per budget,
// shared by its routes, does share.
import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { AppContext } from '../context.js'
import { AppError } from '../infra/errors.js'
import { sessionBehindCookie } from './guards.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The budget the route spends: the API's per-session one unless named (both others are per IP). */
    budget?: 'login' | 'uuid'
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
async function apiKey(req: FastifyRequest, ctx: AppContext): Promise<string> {
  const record = await sessionBehindCookie(req, ctx)
  return record ? `s:${record.id}` : `ip:${req.ip}`
}

export const isRateLimited = (err: unknown) => err instanceof AppError && err.code === 'RATE_LIMITED'

export async function installRateLimits(app: FastifyInstance, ctx: AppContext, hooks: RateLimitHooks) {
  await app.register(rateLimit, {
    global: false,
    redis: ctx.redis,
    nameSpace: ctx.keys.rateLimit,
    errorResponseBuilder: (_req, rl) => {
      const retryAfterSeconds = Math.max(1, Math.ceil(rl.ttl / 1000))
      return new AppError(429, 'RATE_LIMITED', `Too many requests; try again in ${retryAfterSeconds} seconds.`, { retryAfterSeconds })
    },
  })
  const { api, uuid, login } = ctx.config.rateLimits
  const limiter = (budget: { max: number; windowMs: number }, keyGenerator: (req: FastifyRequest) => string | Promise<string>): Limiter => {
    const handler = app.rateLimit({ max: budget.max, timeWindow: budget.windowMs, keyGenerator })
    return async (req, reply) => {
      await handler.call(app, req, reply)
    }
  }
  const limiters = {
    api: limiter(api, (req) => apiKey(req, ctx)),
    uuid: limiter(uuid, (req) => `uuid:${req.ip}`),
    login: limiter(login, (req) => `login:${req.ip}`),
  }

  app.addHook('onRequest', async (req, reply) => {
    const { config, url } = req.routeOptions
    // Unknown paths (404) and exempt routes (health, metrics, the socket) spend nothing.
    if (url === undefined || config.rateLimit === false || config.budget === 'login') return
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
