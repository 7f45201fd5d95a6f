// Admin routes over alerts (docs/api.md, "Admin"): list with filters and paging, acknowledge.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { requireAdmin } from '../auth/admin-guard.js'
import { authOf } from '../sessions/guards.js'
import { badCursor } from '../infra/errors.js'
import { Cursor, errors, IdParam, Nullable } from '../infra/schemas.js'
import { Alert, AlertTypeSchema } from './schemas.js'

const ListQuery = Type.Object(
  {
    type: Type.Optional(AlertTypeSchema),
    acknowledged: Type.Optional(Type.Boolean()),
    limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
    cursor: Type.Optional(Cursor),
  },
  { additionalProperties: false },
)

/** Cursors name the last id of a page; opaque to clients. */
const encodeCursor = (id: number) => Buffer.from(`a${id}`).toString('base64url')
function decodeCursor(cursor: string): number {
  const m = /^a(\d{1,10})$/.exec(Buffer.from(cursor, 'base64url').toString())
  if (!m) throw badCursor()
  return Number(m[1])
}

export const alertRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const admin = requireAdmin(app)

  app.get(
    '/admin/alerts',
    {
      onRequest: admin,
      schema: {
        tags: ['admin'],
        summary: 'Alerts, newest first',
        querystring: ListQuery,
        response: { 200: Type.Object({ items: Type.Array(Alert), nextCursor: Nullable(Type.String()) }), ...errors },
      },
    },
    async (req) => {
      const q = req.query
      const before = q.cursor === undefined ? undefined : decodeCursor(q.cursor)
      const { items, more } = await app.alerts.list({ type: q.type, acknowledged: q.acknowledged, limit: q.limit, before })
      return { items, nextCursor: more ? encodeCursor(items.at(-1)!.id) : null }
    },
  )

  app.post(
    '/admin/alerts/:id/ack',
    {
      onRequest: admin,
      schema: {
        tags: ['admin'],
        summary: 'Acknowledge an alert (idempotent)',
        params: Type.Object({ id: IdParam }),
        response: { 200: Alert, ...errors },
      },
    },
    async (req) => app.alerts.acknowledge(req.params.id, authOf(req).session.userId),
  )
}
