// The web plugin: serves the built browser pages (the demo app at /, the dashboard at /admin).
import fp from 'fastify-plugin'
import { webRoutes } from './routes.js'

export default fp(
  async (app) => {
    await app.register(webRoutes)
  },
  { name: 'tessera-web' },
)
