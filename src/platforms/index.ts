// The platforms plugin: decorates `platforms` (a user's platform connections and switching)
// and registers its routes.
import fp from 'fastify-plugin'
import type { FeatureOptions } from '../sessions/index.js'
import { platformRoutes } from './routes.js'
import { Platforms } from './service.js'

declare module 'fastify' {
  interface FastifyInstance {
    platforms: Platforms
  }
}

export default fp<FeatureOptions>(
  async (app, { http = true }) => {
    app.decorate('platforms', new Platforms(app.database.db, app.bus, app.audit, app.states))
    if (http) await app.register(platformRoutes)
  },
  { name: 'tessera-platforms', dependencies: ['tessera-infra', 'tessera-audit', 'tessera-sessions'] },
)
