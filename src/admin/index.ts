// The admin plugin: the live admin feed (plugged into the hub) and the admin routes over
// sessions, login history, the audit trail, accounts and settings. Decorates `adminFeed`.
import fp from 'fastify-plugin'
import { AdminFeed } from './feed.js'
import { adminRoutes } from './routes.js'
import { adminSessionRoutes } from './session-routes.js'

declare module 'fastify' {
  interface FastifyInstance {
    adminFeed: AdminFeed
  }
}

export default fp(
  async (app) => {
    const feed = new AdminFeed({
      db: app.database.db,
      sessionDetails: app.sessionDetails,
      redis: app.redis,
      keys: app.keys,
      sessions: app.sessions,
      settings: app.settings,
      intervalMs: app.config.adminFeedIntervalMs,
      log: app.log,
    })
    app.hub.useAdmin(feed)
    app.decorate('adminFeed', feed)
    await app.register(adminRoutes)
    await app.register(adminSessionRoutes)
  },
  { name: 'tessera-admin', dependencies: ['tessera-infra', 'tessera-settings', 'tessera-sessions', 'tessera-auth', 'tessera-realtime'] },
)
