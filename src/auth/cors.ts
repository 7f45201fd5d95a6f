// CORS for the pages of the allowed origins (ALLOWED_ORIGINS ∪ PUBLIC_URL's origin ∪ the
// server's own origin): the same allow-list the Origin check of state-changing requests uses.
//
// One synchronous hook, not @fastify/cors: the allow-list depends on the request (the
// server's own origin is the Host's), which the plugin takes only through its delegator, and
// the delegator normalises its options and copies them twice on every request, Origin or
// not. That was about a quarter of session_state's cost over a bare route (docs/benchmarks.md,
// "What each app-wide hook costs"). Here a request without Origin costs one header.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../config.js'
import { originAllowed } from '../sessions/guards.js'

export const CORS = {
  // The session cookie must travel, so the origin is echoed, never `*`.
  allowMethods: 'GET, HEAD, POST, PUT, PATCH, DELETE',
  allowHeaders: 'Content-Type, X-CSRF-Token, X-Tab-Id, X-Request-Id',
  exposeHeaders: 'x-request-id, Retry-After',
  maxAgeSeconds: '600',
}

/**
 * The CORS headers of an answer to `req`: `Vary: Origin` always, the allow headers when the
 * Origin is allowed. True when the request came from an allowed origin.
 */
export function setCorsHeaders(req: FastifyRequest, reply: FastifyReply, allowedOrigins: string[]): boolean {
  // Answers differ by Origin: caches keep them apart.
  reply.header('vary', 'Origin')
  const origin = req.headers.origin
  if (origin === undefined || !originAllowed(req, allowedOrigins)) return false
  reply.header('access-control-allow-origin', origin)
  reply.header('access-control-allow-credentials', 'true')
  reply.header('access-control-expose-headers', CORS.exposeHeaders)
  return true
}

/**
 * Registered before the rate limits and the Origin check: a preflight (any OPTIONS from an
 * allowed origin) is answered 204 in this hook, so it never spends a budget and is never
 * refused for lacking the cookie. An OPTIONS from elsewhere finds no route: 404.
 */
export function registerCors(app: FastifyInstance, config: Config): void {
  app.addHook('onRequest', (req, reply, done) => {
    if (!setCorsHeaders(req, reply, config.allowedOrigins) || req.method !== 'OPTIONS') return done()
    reply.header('access-control-allow-methods', CORS.allowMethods)
    reply.header('access-control-allow-headers', CORS.allowHeaders)
    reply.header('access-control-max-age', CORS.maxAgeSeconds)
    reply.code(204).send()
  })
}
