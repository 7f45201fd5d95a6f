// Locks (docs/api.md, "Locks"): acquire, release, list.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { authOf, requireSession } from '../sessions/guards.js'
import { errors, IsoTime, NoContent, Uuid } from '../infra/schemas.js'

const Resource = Type.String({ minLength: 1, maxLength: 200, description: 'Any name the clients agree on, 1–200 characters' })

export const LockSchema = Type.Object({
  resource: Type.String(),
  owner: Type.Object({ sessionId: Uuid, userId: Type.Integer(), username: Type.String() }),
  acquiredAt: IsoTime,
})

const AcquireBody = Type.Object({ resource: Resource }, { additionalProperties: false })
const ResourceParams = Type.Object({ resource: Resource })
const ListQuery = Type.Object({ prefix: Type.Optional(Type.String({ maxLength: 200 })) }, { additionalProperties: false })

export const lockRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const session = requireSession(app)
  const { locks } = app

  app.post(
    '/api/locks',
    {
      onRequest: session,
      schema: {
        tags: ['locks'],
        summary: 'Lock a resource for this session (200 when it already holds it)',
        body: AcquireBody,
        response: { 200: LockSchema, 201: LockSchema, ...errors },
      },
    },
    async (req, reply) => {
      const { session: s } = authOf(req)
      const { resource } = req.body
      const { lock, created } = await locks.acquire({ sessionId: s.id, userId: s.userId, username: s.username }, resource)
      return reply.code(created ? 201 : 200).send(lock)
    },
  )

  app.delete(
    '/api/locks/:resource',
    {
      onRequest: session,
      schema: { tags: ['locks'], summary: "Release one of this session's locks (resource URL-encoded)", params: ResourceParams, response: { 204: NoContent, ...errors } },
    },
    async (req, reply) => {
      const { session: s } = authOf(req)
      await locks.release({ sessionId: s.id, userId: s.userId }, req.params.resource)
      return reply.code(204).send(null)
    },
  )

  app.get(
    '/api/locks',
    {
      onRequest: session,
      schema: {
        tags: ['locks'],
        summary: 'Held locks, by resource (at most 500), optionally under a literal prefix',
        querystring: ListQuery,
        response: { 200: Type.Object({ items: Type.Array(LockSchema) }), ...errors },
      },
    },
    async (req) => ({ items: await locks.list(req.query.prefix) }),
  )
}
