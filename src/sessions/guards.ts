// Request guards: who is calling (session cookie), whether a state-changing request carries
// the session's CSRF token, whether its Origin is allowed, and whether the caller is an admin.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { AppError } from '../infra/errors.js'
import { csrfInvalid, SessionRefused } from './errors.js'
import type { RequestInfo } from './records.js'
import type { AuthContext, Sessions } from './service.js'
import type { SessionRecord } from './records.js'
import { csrfTokenMatches } from './tokens.js'

export const SESSION_COOKIE = 'sid'
/** Tokens are 43 characters; anything much longer is refused unread. */
export const MAX_TOKEN_LENGTH = 200
const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

/** What the session guard needs: the sessions service and the secret the CSRF tokens are made with. */
export interface SessionGuardDeps {
  sessions: Pick<Sessions, 'authenticate' | 'recordByToken'>
  secret: string
}

declare module 'fastify' {
  interface FastifyRequest {
    auth: AuthContext | null
    /** The record behind the cookie, looked up once per request (sessionBehindCookie). */
    sessionLookup: Promise<SessionRecord | null> | null
  }
  interface FastifyContextConfig {
    /** The request is a background poll, not user activity: it does not move lastActivity. */
    passive?: boolean
  }
}

export function requestInfo(req: FastifyRequest): RequestInfo {
  return {
    ip: req.ip ?? null,
    userAgent: req.headers['user-agent'],
    acceptLanguage: req.headers['accept-language'],
  }
}

export function clearSessionCookie(reply: FastifyReply) {
  reply.clearCookie(SESSION_COOKIE, { path: '/' })
}

function sameOrigin(req: FastifyRequest, origin: string): boolean {
  const host = req.headers.host
  return host !== undefined && (origin === `http://${host}` || origin === `https://${host}`)
}

export function originAllowed(req: FastifyRequest, allowed: string[]): boolean {
  const origin = req.headers.origin
  return origin === undefined || allowed.includes(origin) || sameOrigin(req, origin)
}

/**
 * The session record (live or ended) the request's cookie names, or null. The rate limit
 * and the session guard both need it; it is looked up once.
 */
export function sessionBehindCookie(req: FastifyRequest, d: Pick<SessionGuardDeps, 'sessions'>): Promise<SessionRecord | null> {
  if (!req.sessionLookup) {
    const token = req.cookies[SESSION_COOKIE]
    req.sessionLookup = token && token.length <= MAX_TOKEN_LENGTH ? d.sessions.recordByToken(token) : Promise.resolve(null)
  }
  return req.sessionLookup
}

export function installGuards(app: FastifyInstance, allowedOrigins: string[]) {
  app.decorateRequest('auth', null)
  app.decorateRequest('sessionLookup', null)

  // Any refusal of the cookie clears it, whether a guard or a handler threw it.
  app.addHook('onError', async (_req, reply, err) => {
    if (err instanceof SessionRefused) clearSessionCookie(reply)
  })

  // Cross-site requests are refused before any route's guard or handler runs (login included).
  app.addHook('onRequest', async (req) => {
    if (STATE_CHANGING.has(req.method) && !originAllowed(req, allowedOrigins)) {
      throw new AppError(403, 'ORIGIN_NOT_ALLOWED', `Requests from ${req.headers.origin} are not allowed.`)
    }
  })
}

/** onRequest: a live session is required; state-changing requests need its CSRF token. */
export function requireSession(d: SessionGuardDeps) {
  return async (req: FastifyRequest) => {
    const known = await sessionBehindCookie(req, d)
    req.auth = await d.sessions.authenticate(req.cookies[SESSION_COOKIE], requestInfo(req), !req.routeOptions.config.passive, known)
    if (STATE_CHANGING.has(req.method)) {
      const header = req.headers['x-csrf-token']
      if (!csrfTokenMatches(d.secret, req.auth.session.id, typeof header === 'string' ? header : undefined)) throw csrfInvalid()
    }
  }
}

/** The authenticated caller; only valid after requireSession ran. */
export function authOf(req: FastifyRequest): AuthContext {
  if (!req.auth) throw new Error('route is missing its requireSession guard')
  return req.auth
}
