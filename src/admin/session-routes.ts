// Admin routes over sessions, login history and the audit trail (docs/api.md, "Admin").
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { requireAdmin } from '../auth/admin-guard.js'
import { userIdByName } from '../auth/users.js'
import { authOf } from '../sessions/guards.js'
import { ROLES } from '../settings/roles.js'
import { badCursor } from '../infra/errors.js'
import { Cursor, errors, IsoTime, Nullable, Uuid } from '../infra/schemas.js'
import { sessionNotFound } from '../sessions/errors.js'
import { SessionView } from '../sessions/schemas.js'
import { SORT_COLUMNS } from '../realtime/protocol.js'
import { badSessionId, blankReason, rangeReversed, sessionAlreadyEnded } from './errors.js'
import { listSessions } from './session-list.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** A session id from the path, lower-cased (PostgreSQL and Redis keys spell ids that way). */
function sessionIdOf({ id }: { id: string }): string {
  if (!UUID.test(id)) throw badSessionId()
  return id.toLowerCase()
}

const Limit = (max: number, def: number) => Type.Integer({ minimum: 1, maximum: max, default: def })

const ListQuery = Type.Object(
  {
    status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('idle')])),
    user: Type.Optional(Type.String({ maxLength: 200 })),
    role: Type.Optional(Type.Union(ROLES.map((r) => Type.Literal(r)))),
    ip: Type.Optional(Type.String({ maxLength: 64 })),
    q: Type.Optional(Type.String({ maxLength: 200 })),
    sort: Type.Optional(Type.Union(SORT_COLUMNS.map((c) => Type.Literal(c)))),
    order: Type.Optional(Type.Union([Type.Literal('asc'), Type.Literal('desc')])),
    limit: Limit(500, 50),
    cursor: Type.Optional(Cursor),
  },
  { additionalProperties: false },
)

const SessionDetail = Type.Intersect([
  Type.Omit(SessionView, ['status']),
  Type.Object({
    status: Type.Union([Type.Literal('active'), Type.Literal('idle'), Type.Literal('ended')]),
    endedAt: Nullable(IsoTime),
    endReason: Nullable(Type.String()),
    endedBy: Nullable(Type.Integer()),
    endNote: Nullable(Type.String()),
    fingerprint: Nullable(Type.String()),
    flags: Type.Array(Type.String()),
    expiresAt: IsoTime,
  }),
])

const LoginAttempt = Type.Object({
  id: Type.Integer(),
  userId: Nullable(Type.Integer()),
  username: Type.String(),
  ip: Nullable(Type.String()),
  userAgent: Nullable(Type.String()),
  success: Type.Boolean(),
  reason: Type.String(),
  method: Type.String(),
  at: IsoTime,
  flags: Type.Array(Type.String()),
})

const AuditEvent = Type.Object({
  id: Type.Integer(),
  type: Type.String(),
  actorUserId: Nullable(Type.Integer()),
  userId: Nullable(Type.Integer()),
  sessionId: Nullable(Type.String()),
  data: Type.Record(Type.String(), Type.Unknown()),
  at: IsoTime,
})

const SessionParams = Type.Object({ id: Type.String({ maxLength: 100, description: 'the session id (a UUID, any case)' }) })

/** Offset cursors for the live list (it is sorted in memory); id cursors for the logs. */
const encodeCursor = (n: number) => Buffer.from(String(n)).toString('base64url')
function decodeCursor(cursor: string | undefined): number {
  if (cursor === undefined) return 0
  const text = Buffer.from(cursor, 'base64url').toString()
  const n = Number(text)
  if (!/^\d{1,15}$/.test(text) || !Number.isSafeInteger(n)) throw badCursor()
  return n
}

function timeRange(from: string | undefined, to: string | undefined) {
  const f = from === undefined ? undefined : new Date(from)
  const t = to === undefined ? undefined : new Date(to)
  if (f && t && f > t) throw rangeReversed()
  return { from: f, to: t }
}

export const adminSessionRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const admin = requireAdmin(app)
  const { db } = app.database

  app.get(
    '/admin/sessions',
    {
      onRequest: admin,
      schema: {
        tags: ['admin'],
        summary: 'Live sessions: filter, sort, page',
        querystring: ListQuery,
        response: { 200: Type.Object({ items: Type.Array(SessionView), total: Type.Integer(), nextCursor: Nullable(Type.String()) }), ...errors },
      },
    },
    async (req) => {
      const q = req.query
      const offset = decodeCursor(q.cursor)
      const all = await listSessions(app.sessionDetails, app.sessions, await app.settings.get(), q)
      const items = all.slice(offset, offset + q.limit)
      return { items, total: all.length, nextCursor: offset + q.limit < all.length ? encodeCursor(offset + q.limit) : null }
    },
  )

  // Static paths first: /admin/sessions/history must not be read as a session id.
  app.get(
    '/admin/sessions/history',
    {
      onRequest: admin,
      schema: {
        tags: ['admin'],
        summary: 'Login history',
        querystring: Type.Object(
          {
            user: Type.Optional(Type.String({ maxLength: 200 })),
            from: Type.Optional(IsoTime),
            to: Type.Optional(IsoTime),
            success: Type.Optional(Type.Boolean()),
            ip: Type.Optional(Type.String({ maxLength: 64 })),
            limit: Limit(500, 50),
            cursor: Type.Optional(Cursor),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ items: Type.Array(LoginAttempt), nextCursor: Nullable(Type.String()) }), ...errors },
      },
    },
    async (req) => {
      const q = req.query
      const { from, to } = timeRange(q.from, q.to)
      const before = q.cursor === undefined ? undefined : decodeCursor(q.cursor)
      const rows = await app.loginHistory.list({ user: q.user, from, to, success: q.success, ip: q.ip, before, limit: q.limit + 1 })
      const page = rows.slice(0, q.limit)
      return { items: page, nextCursor: rows.length > q.limit ? encodeCursor(page.at(-1)!.id) : null }
    },
  )

  app.get(
    '/admin/audit',
    {
      onRequest: admin,
      schema: {
        tags: ['admin'],
        summary: 'The audit trail',
        querystring: Type.Object(
          {
            type: Type.Optional(Type.String({ maxLength: 64 })),
            user: Type.Optional(Type.String({ maxLength: 200 })),
            session: Type.Optional(Uuid),
            from: Type.Optional(IsoTime),
            to: Type.Optional(IsoTime),
            limit: Limit(500, 50),
            cursor: Type.Optional(Cursor),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ items: Type.Array(AuditEvent), nextCursor: Nullable(Type.String()) }), ...errors },
      },
    },
    async (req) => {
      const q = req.query
      const { from, to } = timeRange(q.from, q.to)
      const userId = await userIdByName(db, q.user)
      if (userId === null) return { items: [], nextCursor: null }
      const before = q.cursor === undefined ? undefined : decodeCursor(q.cursor)
      const rows = await app.audit.list({ type: q.type, userId, session: q.session, from, to, before, limit: q.limit + 1 })
      const page = rows.slice(0, q.limit)
      return { items: page, nextCursor: rows.length > q.limit ? encodeCursor(page.at(-1)!.id) : null }
    },
  )

  app.get(
    '/admin/sessions/:id',
    {
      onRequest: admin,
      schema: { tags: ['admin'], summary: 'One session, live or ended', params: SessionParams, response: { 200: SessionDetail, ...errors } },
    },
    async (req) => {
      const id = sessionIdOf(req.params)
      const row = await app.sessionDetails.record(id)
      if (!row) throw sessionNotFound()
      const [view] = await app.sessions.viewsOf([id], await app.settings.get())
      return {
        ...view!,
        status: row.status === 'ended' ? ('ended' as const) : view!.status,
        tabs: row.status === 'ended' ? 0 : view!.tabs,
        endedAt: row.endedAt?.toISOString() ?? null,
        endReason: row.endReason,
        endedBy: row.endedBy,
        endNote: row.endNote,
        fingerprint: row.fingerprint?.trim() ?? null,
        flags: row.flags,
        expiresAt: row.expiresAt.toISOString(),
      }
    },
  )

  app.delete(
    '/admin/sessions/:id',
    {
      onRequest: admin,
      schema: {
        tags: ['admin'],
        summary: "Force-terminate a session (the user's tabs are told why)",
        params: SessionParams,
        body: Type.Object(
          {
            reason: Type.String({ minLength: 1, maxLength: 500, description: '1–500 characters, not counting leading and trailing spaces; audited, and shown to the user unless `note` is given' }),
            note: Type.Optional(Type.String({ minLength: 1, maxLength: 500, description: 'what the user is shown instead of the reason' })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ terminated: Type.Literal(true) }), ...errors },
      },
    },
    async (req) => {
      const id = sessionIdOf(req.params)
      const body = req.body
      const reason = body.reason.trim()
      const note = body.note?.trim() || null
      if (reason.length === 0) throw blankReason()
      const ended = await app.sessions.end([id], 'admin', { actorUserId: authOf(req).session.userId, note: note ?? reason, adminReason: note ? reason : null })
      if (ended.length === 0) {
        if ((await app.sessionDetails.statusOf(id)) === null) throw sessionNotFound()
        throw sessionAlreadyEnded()
      }
      return { terminated: true as const }
    },
  )

  app.get(
    '/admin/sessions/:id/timeline',
    {
      onRequest: admin,
      schema: {
        tags: ['admin'],
        summary: "A session's events in order (the replay)",
        params: SessionParams,
        response: { 200: Type.Object({ items: Type.Array(Type.Object({ at: IsoTime, type: Type.String(), data: Type.Record(Type.String(), Type.Unknown()) })) }), ...errors },
      },
    },
    async (req) => {
      const id = sessionIdOf(req.params)
      if ((await app.sessionDetails.statusOf(id)) === null) throw sessionNotFound()
      return { items: await app.audit.timeline(id) }
    },
  )
}
