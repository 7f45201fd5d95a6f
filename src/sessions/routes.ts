// The caller's own session (docs/api.md, "The caller's own session").
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { authOf, clearSessionCookie, requireSession } from './guards.js'
import { errors, IsoTime, NoContent, Uuid } from '../infra/schemas.js'
import { sessionNotFound } from './errors.js'
import { sessionIdInUse, unusedSessionUuid } from './fresh-uuid.js'
import { SessionState, SessionView } from './schemas.js'
import { StateRead } from './state-read.js'

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i

export const sessionRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const session = requireSession(app)
  const { sessions } = app
  const stateRead = new StateRead(app)

  // Polled by every tab whose socket is down: the guard's checks and the API budget are made
  // by StateRead, in the same Redis step as the state's own reads.
  app.get(
    '/api/session_state',
    {
      config: { passive: true, inlineBudget: true },
      schema: { tags: ['session'], summary: 'The snapshot a tab syncs from', response: { 200: SessionState, ...errors } },
    },
    async (req, reply) => stateRead.read(req, reply),
  )

  app.post(
    '/api/session/validate',
    {
      onRequest: session,
      config: { passive: true },
      schema: {
        tags: ['session'],
        summary: 'Is this session still valid?',
        response: {
          200: Type.Object({
            valid: Type.Literal(true),
            session: Type.Object({
              id: Uuid,
              status: Type.Union([Type.Literal('active'), Type.Literal('idle')]),
              expiresAt: IsoTime,
              idleExpiresAt: IsoTime,
            }),
            timestamp: IsoTime,
          }),
          ...errors,
        },
      },
    },
    async (req) => {
      const auth = authOf(req)
      const e = sessions.expiryOf(auth)
      return { valid: true as const, session: { id: auth.session.id, ...e }, timestamp: new Date().toISOString() }
    },
  )

  app.post(
    '/api/session/cleanup',
    {
      onRequest: session,
      schema: {
        tags: ['session'],
        summary: "End the caller's other sessions that are past their idle or lifetime limit",
        response: { 200: Type.Object({ cleanedSessions: Type.Integer(), message: Type.String() }), ...errors },
      },
    },
    async (req) => {
      const auth = authOf(req)
      const n = await sessions.cleanupStale(auth.session.userId, auth.session.id, auth.settings)
      return { cleanedSessions: n, message: n === 0 ? 'No stale sessions to clean up.' : `Ended ${n} stale session${n === 1 ? '' : 's'}.` }
    },
  )

  app.get(
    '/api/sessions',
    {
      onRequest: session,
      schema: {
        tags: ['session'],
        summary: "The user's own active sessions (your devices)",
        response: { 200: Type.Object({ items: Type.Array(Type.Intersect([SessionView, Type.Object({ current: Type.Boolean() })])) }), ...errors },
      },
    },
    async (req) => {
      const auth = authOf(req)
      const ids = await sessions.activeIdsOfUser(auth.session.userId)
      const views = await sessions.viewsOf(ids, auth.settings)
      views.sort((a, b) => b.lastActivity.localeCompare(a.lastActivity))
      return { items: views.map((v) => ({ ...v, current: v.id === auth.session.id })) }
    },
  )

  app.delete(
    '/api/sessions/:id',
    {
      onRequest: session,
      schema: {
        tags: ['session'],
        summary: 'End one of your own sessions (reason revoked_by_user)',
        params: Type.Object({ id: Uuid }),
        response: { 204: NoContent, ...errors },
      },
    },
    async (req, reply) => {
      const auth = authOf(req)
      const id = req.params.id.toLowerCase()
      if (!(await sessions.activeIdsOfUser(auth.session.userId)).includes(id)) throw sessionNotFound()
      await sessions.end([id], 'revoked_by_user', { actorUserId: auth.session.userId, byTabId: null })
      // Revoking the session this browser is using signs it out like logout does.
      if (id === auth.session.id) clearSessionCookie(reply)
      return reply.code(204).send(null)
    },
  )

  app.post(
    '/api/session/generate-uuid',
    {
      onRequest: session,
      config: { budget: 'uuid' },
      schema: { tags: ['session'], summary: 'A fresh UUID v4 unused by any session', response: { 200: Type.Object({ uuid: Uuid }), ...errors } },
    },
    async () => ({ uuid: await unusedSessionUuid(app.database.db) }),
  )

  app.post(
    '/api/session/validate-uuid',
    {
      onRequest: session,
      config: { budget: 'uuid' },
      schema: {
        tags: ['session'],
        summary: 'Strict UUID v4 check, and whether a session uses it',
        body: Type.Object({ uuid: Type.String({ maxLength: 100 }) }, { additionalProperties: false }),
        response: { 200: Type.Object({ uuid: Type.String(), validFormat: Type.Boolean(), exists: Type.Boolean() }), ...errors },
      },
    },
    async (req) => {
      const { uuid } = req.body
      const validFormat = UUID_V4.test(uuid)
      const exists = validFormat && (await sessionIdInUse(app.database.db, uuid))
      return { uuid, validFormat, exists }
    },
  )
}
