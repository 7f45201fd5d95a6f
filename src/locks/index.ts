// The locks plugin: decorates `locks` (named resource locks owned by a session; the
// session-ended job releases them) and registers its routes.
import fp from 'fastify-plugin'
import type { FeatureOptions } from '../sessions/index.js'
import { lockRoutes } from './routes.js'
import { Locks } from './service.js'

declare module 'fastify' {
  interface FastifyInstance {
    locks: Locks
  }
}

export default fp<FeatureOptions>(
  async (app, { http = true }) => {
    app.decorate('locks', new Locks({ sql: app.database.sql, bus: app.bus, keys: app.keys, audit: app.audit }))
    if (http) await app.register(lockRoutes)
  },
  { name: 'tessera-locks', dependencies: ['tessera-infra', 'tessera-audit', 'tessera-sessions'] },
)
