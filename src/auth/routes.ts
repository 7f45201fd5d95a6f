// Authentication routes (docs/api.md, "Authentication").
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply } from 'fastify'
import { Type } from 'typebox'
import { currentPasswordWrong } from './errors.js'
import { errors, IdParam, IsoTime, NoContent, Uuid } from '../infra/schemas.js'
import { SessionView, UserSummary } from '../sessions/schemas.js'
import { csrfTokenFor } from '../sessions/tokens.js'
import { authOf, clearSessionCookie, requestInfo, requireSession, SESSION_COOKIE } from '../sessions/guards.js'
import type { Login } from './login.js'
import { checkPasswordStrength, hashPassword, verifyPassword } from './passwords.js'
import { changeAccountIn, findUserById } from './users.js'
import type { Config } from '../config.js'
import type { Sessions } from '../sessions/service.js'
import type { SettingsService } from '../settings/service.js'

const LoginBody = Type.Object(
  {
    username: Type.String({ minLength: 1, maxLength: 200 }),
    password: Type.String({ minLength: 1, maxLength: 1024 }),
    platformId: Type.Optional(IdParam),
    endSessionId: Type.Optional(Uuid),
  },
  { additionalProperties: false },
)

export const LoginReply = Type.Object({
  user: UserSummary,
  session: Type.Intersect([SessionView, Type.Object({ expiresAt: IsoTime, idleExpiresAt: IsoTime })]),
  csrfToken: Type.String(),
})

const tab = (tabId: unknown) => (typeof tabId === 'string' && tabId.length > 0 && tabId.length <= 64 ? tabId : null)

export function setSessionCookie(reply: FastifyReply, app: { config: Pick<Config, 'cookieSecure'> }, token: string, expiresAt: Date) {
  reply.setCookie(SESSION_COOKIE, token, {
    httpOnly: true,
    sameSite: 'lax',
    path: '/',
    secure: app.config.cookieSecure,
    expires: expiresAt,
  })
}

/** The answer to a sign-in that opened a session: its cookie, the user, the session, the CSRF token. */
/** What answering a sign-in needs. */
export interface SignedInDeps {
  config: Pick<Config, 'cookieSecure'>
  settings: Pick<SettingsService, 'get'>
  sessions: Pick<Sessions, 'viewOfNew'>
  secret: string
}

export async function signedIn(
  reply: FastifyReply,
  app: SignedInDeps,
  user: { id: number; username: string; email: string | null; role: string },
  opened: { id: string; token: string; expiresAt: Date },
) {
  setSessionCookie(reply, app, opened.token, opened.expiresAt)
  const s = await app.settings.get()
  const view = await app.sessions.viewOfNew(opened.id, s)
  return {
    user: { id: user.id, username: user.username, email: user.email, role: user.role },
    session: {
      ...view!,
      expiresAt: opened.expiresAt.toISOString(),
      idleExpiresAt: new Date(Date.now() + s.idleTimeoutSeconds * 1000).toISOString(),
    },
    csrfToken: csrfTokenFor(app.secret, opened.id),
  }
}

export const authRoutes: FastifyPluginAsyncTypebox<{ login: Login }> = async (app, { login }) => {
  const session = requireSession(app)
  const { sessions } = app

  app.post(
    '/api/auth/login',
    {
      schema: { tags: ['auth'], summary: 'Sign in with username and password', body: LoginBody, response: { 200: LoginReply, ...errors } },
      config: { budget: 'login' },
    },
    async (req, reply) => {
      const body = req.body
      const { user, opened } = await login.login(body, requestInfo(req))
      return signedIn(reply, app, user, opened)
    },
  )

  app.post(
    '/api/auth/logout',
    { onRequest: session, schema: { tags: ['auth'], summary: 'Sign out this session (every tab)', response: { 204: NoContent, ...errors } } },
    async (req, reply) => {
      const { session: s } = authOf(req)
      await sessions.end([s.id], 'logout', { byTabId: tab(req.headers['x-tab-id']) })
      clearSessionCookie(reply)
      return reply.code(204).send(null)
    },
  )

  app.post(
    '/api/auth/logout-all',
    {
      onRequest: session,
      schema: {
        tags: ['auth'],
        summary: 'Sign out every session of the user, this one included',
        body: Type.Object({ reason: Type.Optional(Type.String({ maxLength: 500 })) }, { additionalProperties: false }),
        response: { 200: Type.Object({ terminatedSessions: Type.Integer() }), ...errors },
      },
    },
    async (req, reply) => {
      const { session: s } = authOf(req)
      const reason = req.body?.reason
      const ids = await sessions.activeIdsOfUser(s.userId)
      const ended = await sessions.end(ids, 'logout_all', { actorUserId: s.userId, note: reason ?? null, byTabId: tab(req.headers['x-tab-id']) })
      clearSessionCookie(reply)
      return { terminatedSessions: ended.length }
    },
  )

  app.get(
    '/api/auth/csrf',
    {
      onRequest: session,
      config: { passive: true },
      schema: { tags: ['auth'], summary: "This session's CSRF token", response: { 200: Type.Object({ csrfToken: Type.String() }), ...errors } },
    },
    async (req) => ({ csrfToken: csrfTokenFor(app.secret, authOf(req).session.id) }),
  )

  app.post(
    '/api/auth/password',
    {
      onRequest: session,
      schema: {
        tags: ['auth'],
        summary: 'Change the password; every other session of the user ends',
        body: Type.Object(
          { currentPassword: Type.String({ minLength: 1, maxLength: 1024 }), newPassword: Type.String({ minLength: 1, maxLength: 1024 }) },
          { additionalProperties: false },
        ),
        response: { 204: NoContent, ...errors },
      },
    },
    async (req, reply) => {
      const { session: s } = authOf(req)
      const { currentPassword, newPassword } = req.body
      const user = await findUserById(app.database.db, s.userId)
      if (!user || !(await verifyPassword(user.passwordHash, currentPassword))) {
        throw currentPasswordWrong()
      }
      checkPasswordStrength(newPassword, user.username)
      const passwordHash = await hashPassword(newPassword)
      // Under the user's login lock: a login that checked the old password either opened its
      // session first (ended here with the others) or is refused when it gets the lock.
      await sessions.whileLoginsWait(user.id, async ({ tx, liveSessions, end }) => {
        await changeAccountIn(tx, user.id, { passwordHash })
        await end((await liveSessions()).filter((id) => id !== s.id), 'password_changed', { actorUserId: user.id })
      })
      await app.audit.record({ type: 'user.password_changed', actorUserId: user.id, userId: user.id, sessionId: s.id })
      return reply.code(204).send(null)
    },
  )
}
