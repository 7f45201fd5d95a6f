// Admin routes of the foundation: accounts and the runtime Settings record (docs/api.md, "Admin").
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { requireAdmin } from '../auth/admin-guard.js'
import { authOf } from '../sessions/guards.js'
import { ROLES } from '../settings/roles.js'
import { listUsers } from '../auth/users.js'
import { badCursor } from '../infra/errors.js'
import { Cursor, errors, IdParam, IsoTime, NoContent, Nullable } from '../infra/schemas.js'
import { Settings, SettingsPatch } from '../settings/schemas.js'
import { UserAdmin } from './users.js'
import { SERVER_MESSAGES } from '../realtime/protocol.js'

const Role = Type.Union(ROLES.map((r) => Type.Literal(r)))
const Email = Type.String({ format: 'email', maxLength: 320 })

const User = Type.Object({
  id: Type.Integer(),
  username: Type.String(),
  email: Nullable(Type.String()),
  role: Type.String(),
  disabled: Type.Boolean(),
  lockedUntil: Nullable(IsoTime),
  createdAt: IsoTime,
})

const UserParams = Type.Object({ id: IdParam })

export const adminRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const admin = requireAdmin(app)
  const users = new UserAdmin(app)

  app.get(
    '/admin/users',
    {
      onRequest: admin,
      schema: {
        tags: ['admin'],
        summary: 'List accounts',
        querystring: Type.Object(
          {
            q: Type.Optional(Type.String({ maxLength: 200 })),
            role: Type.Optional(Role),
            limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
            cursor: Type.Optional(Cursor),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ items: Type.Array(User), nextCursor: Nullable(Type.String()) }), ...errors },
      },
    },
    async (req) => {
      const q = req.query
      const cursor = q.cursor === undefined ? undefined : Number(q.cursor)
      // User ids are PostgreSQL integers: a cursor past the largest names no user.
      if (cursor !== undefined && (!Number.isSafeInteger(cursor) || cursor < 0 || cursor > 2_147_483_647)) {
        throw badCursor()
      }
      return listUsers(app.database.db, { ...q, cursor })
    },
  )

  app.post(
    '/admin/users',
    {
      onRequest: admin,
      schema: {
        tags: ['admin'],
        summary: 'Create an account',
        body: Type.Object(
          {
            username: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.@-]+$' }),
            email: Type.Optional(Nullable(Email)),
            password: Type.String({ minLength: 1, maxLength: 1024 }),
            role: Role,
          },
          { additionalProperties: false },
        ),
        response: { 201: User, ...errors },
      },
    },
    async (req, reply) => {
      const body = req.body
      return reply.code(201).send(await users.create(body, authOf(req).session.userId))
    },
  )

  app.patch(
    '/admin/users/:id',
    {
      onRequest: admin,
      schema: {
        tags: ['admin'],
        summary: "Change an account's role, state, email or password",
        params: UserParams,
        body: Type.Object(
          {
            role: Type.Optional(Role),
            disabled: Type.Optional(Type.Boolean()),
            email: Type.Optional(Nullable(Email)),
            password: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
          },
          { additionalProperties: false, minProperties: 1 },
        ),
        response: { 200: User, ...errors },
      },
    },
    async (req) => {
      const { id } = req.params
      return users.change(id, req.body, authOf(req).session.userId)
    },
  )

  app.post(
    '/admin/users/:id/unlock',
    {
      onRequest: admin,
      schema: { tags: ['admin'], summary: 'Lift a failed-login lockout', params: UserParams, response: { 204: NoContent, ...errors } },
    },
    async (req, reply) => {
      await users.unlock(req.params.id, authOf(req).session.userId)
      return reply.code(204).send(null)
    },
  )

  app.get(
    '/admin/sessions/config',
    { onRequest: admin, schema: { tags: ['admin'], summary: 'The runtime settings', response: { 200: Settings, ...errors } } },
    async () => app.settings.get(),
  )

  app.put(
    '/admin/sessions/config',
    {
      onRequest: admin,
      schema: {
        tags: ['admin'],
        summary: 'Change runtime settings (partial; in force on every node within 1 s)',
        body: SettingsPatch,
        response: { 200: Settings, ...errors },
      },
    },
    async (req) => {
      const { before, after } = await app.settings.change(req.body ?? {}, authOf(req).session.userId)
      // Tabs pace their idle display by idleAfterMs: tell every open tab on every node.
      if (after.idleAfterSeconds !== before.idleAfterSeconds) {
        await app.bus.publishBroadcast({
          type: SERVER_MESSAGES.configChanged,
          heartbeatIntervalMs: app.config.heartbeatIntervalSeconds * 1000,
          idleAfterMs: after.idleAfterSeconds * 1000,
        })
      }
      return after
    },
  )
}
