// Operations: liveness, readiness, metrics, the OpenAPI document (docs/api.md, "Operations").
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { metricsUnauthenticated } from './errors.js'

const Check = Type.Object({ ok: Type.Boolean(), latencyMs: Type.Number(), error: Type.Optional(Type.String()) })
const Readiness = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('unavailable')]),
  checks: Type.Object({ postgres: Check, redis: Check, queues: Check }),
})

async function timed(probe: () => Promise<unknown>, timeoutMs = 2000) {
  const start = performance.now()
  try {
    await Promise.race([probe(), new Promise((_, reject) => setTimeout(() => reject(new Error('timed out')), timeoutMs).unref())])
    return { ok: true, latencyMs: Math.round((performance.now() - start) * 100) / 100 }
  } catch (err) {
    return { ok: false, latencyMs: Math.round(performance.now() - start), error: (err instanceof Error ? err.message : String(err)).slice(0, 200) }
  }
}

export const opsRoutes: FastifyPluginAsyncTypebox<{ openapi?: boolean }> = async (app, { openapi = true }) => {
  const exempt = { rateLimit: false } as const

  app.get(
    '/healthz',
    { config: exempt, schema: { tags: ['ops'], summary: 'The process is up', response: { 200: Type.Object({ status: Type.Literal('ok') }) } } },
    async () => ({ status: 'ok' as const }),
  )

  app.get(
    '/readyz',
    { config: exempt, schema: { tags: ['ops'], summary: 'PostgreSQL, Redis and the job queues answer', response: { 200: Readiness, 503: Readiness } } },
    async (_req, reply) => {
      const [postgres, redis, queuesCheck] = await Promise.all([
        // The pool itself, as Redis is pinged: the driver's own error is what the check reports.
        timed(() => app.database.sql`select 1`),
        timed(() => app.redis.ping()),
        timed(() => app.queues.ping()),
      ])
      const ready = postgres.ok && redis.ok && queuesCheck.ok
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'unavailable', checks: { postgres, redis, queues: queuesCheck } })
    },
  )

  app.get('/metrics', { config: exempt, schema: { tags: ['ops'], summary: 'Prometheus metrics', hide: false } }, async (req, reply) => {
    const token = app.config.metricsToken
    if (token && req.headers.authorization !== `Bearer ${token}`) {
      throw metricsUnauthenticated()
    }
    reply.header('content-type', app.metrics.registry.contentType)
    return app.metrics.registry.metrics()
  })

  if (openapi) app.get('/api/openapi.json', { config: exempt, schema: { hide: true } }, async () => app.swagger())
}
