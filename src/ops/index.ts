// The ops plugin: /healthz, /readyz, /metrics and (on API nodes) the OpenAPI document.
import fp from 'fastify-plugin'
import { opsRoutes } from './routes.js'

export default fp<{ openapi?: boolean }>(
  async (app, { openapi = true }) => {
    await app.register(opsRoutes, { openapi })
  },
  { name: 'tessera-ops', dependencies: ['tessera-infra'] },
)
