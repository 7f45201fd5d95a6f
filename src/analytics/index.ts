// The analytics plugin: GET /admin/sessions/analytics (capacity figures in SQL).
import fp from 'fastify-plugin'
import { analyticsRoutes } from './routes.js'

export default fp(
  async (app) => {
    await app.register(analyticsRoutes)
  },
  { name: 'tessera-analytics', dependencies: ['tessera-infra', 'tessera-sessions', 'tessera-auth'] },
)
