// Platform connections and switching (docs/api.md, "Platforms").
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { authOf, requireSession } from '../sessions/guards.js'
import { errors, IdParam, NoContent } from '../infra/schemas.js'
import { PlatformSchema } from '../sessions/schemas.js'

const PlatformParams = Type.Object({ platformId: IdParam })

const CreateBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100 }),
    type: Type.Union([Type.Literal('pixelfed'), Type.Literal('mastodon'), Type.Literal('other')]),
    instanceUrl: Type.String({ maxLength: 2048, pattern: '^https?://[^\\s/$.?#][^\\s]*$' }),
    isDefault: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
)

const tabOf = (value: unknown) => (typeof value === 'string' && value.length > 0 && value.length <= 64 ? value : null)

export const platformRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const session = requireSession(app)
  const { platforms } = app

  app.get(
    '/api/platforms',
    { onRequest: session, schema: { tags: ['platforms'], summary: "The user's platform connections", response: { 200: Type.Object({ items: Type.Array(PlatformSchema) }), ...errors } } },
    async (req) => ({ items: await platforms.list(authOf(req).session.userId) }),
  )

  app.post(
    '/api/platforms',
    { onRequest: session, schema: { tags: ['platforms'], summary: 'Add a platform connection', body: CreateBody, response: { 201: PlatformSchema, ...errors } } },
    async (req, reply) => {
      const platform = await platforms.create(authOf(req).session.userId, req.body)
      return reply.code(201).send(platform)
    },
  )

  app.delete(
    '/api/platforms/:platformId',
    {
      onRequest: session,
      schema: { tags: ['platforms'], summary: 'Delete a platform connection', params: PlatformParams, response: { 204: NoContent, ...errors } },
    },
    async (req, reply) => {
      const { platformId } = req.params
      await platforms.remove(authOf(req).session.userId, platformId, tabOf(req.headers['x-tab-id']))
      return reply.code(204).send(null)
    },
  )

  app.post(
    '/api/switch_platform/:platformId',
    {
      onRequest: session,
      schema: {
        tags: ['platforms'],
        summary: "Switch the session's active platform (every tab follows)",
        params: PlatformParams,
        body: Type.Object({ expectedVersion: Type.Optional(Type.Integer({ minimum: 0 })) }, { additionalProperties: false }),
        response: { 200: Type.Object({ platform: PlatformSchema, version: Type.Integer(), message: Type.String() }), ...errors },
      },
    },
    async (req) => {
      const { session: s } = authOf(req)
      const { platformId } = req.params
      const expectedVersion = req.body?.expectedVersion
      const r = await platforms.switchTo(s, platformId, { expectedVersion, byTabId: tabOf(req.headers['x-tab-id']) })
      return { platform: r.platform, version: r.version, message: r.changed ? `Switched to ${r.platform.name}.` : `${r.platform.name} is already active.` }
    },
  )
}
