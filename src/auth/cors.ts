// CORS for the pages of the allowed origins (ALLOWED_ORIGINS ∪ PUBLIC_URL's origin ∪ the
// server's own origin): the same allow-list the Origin check of state-changing requests uses.
import cors from '@fastify/cors'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Config } from '../config.js'
import { originAllowed } from '../sessions/guards.js'

const base = {
  // The session cookie must travel, so the origin is echoed, never `*`.
  credentials: true,
  methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
  allowedHeaders: ['Content-Type', 'X-CSRF-Token', 'X-Tab-Id', 'X-Request-Id'],
  exposedHeaders: ['x-request-id', 'Retry-After'],
  maxAge: 600,
  // An OPTIONS from an allowed page without Access-Control-Request-Method is answered like a
  // preflight instead of with the plugin's plain-text 400.
  strictPreflight: false,
}

/** The request's Origin when it may read our answers, else false (no CORS headers at all). */
function corsOrigin(req: FastifyRequest, allowed: string[]): string | false {
  const origin = req.headers.origin
  return typeof origin === 'string' && originAllowed(req, allowed) ? origin : false
}

/**
 * Registered before the rate limits and the Origin check: a preflight is answered in this
 * hook (204), so it never spends a budget and is never refused for lacking the cookie.
 */
export async function registerCors(app: FastifyInstance, config: Config) {
  await app.register(cors, {
    delegator: (req, callback) => callback(null, { ...base, origin: corsOrigin(req, config.allowedOrigins) }),
  })
}
