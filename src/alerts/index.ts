// The alerts plugin: decorates `alerts`, connects it to the raise points of sessions and
// auth (the alert relay), and registers the admin routes over alerts.
import fp from 'fastify-plugin'
import type { FeatureOptions } from '../sessions/index.js'
import { hasSinks } from './delivery.js'
import { alertKeys } from './keys.js'
import { alertRoutes } from './routes.js'
import { Alerts } from './service.js'

declare module 'fastify' {
  interface FastifyInstance {
    alerts: Alerts
  }
}

export default fp<FeatureOptions>(
  async (app, { http = true }) => {
    const { config } = app
    const alerts = new Alerts({
      db: app.database.db,
      redis: app.redis,
      keys: { ...app.keys, ...alertKeys(app.keys) },
      settings: app.settings,
      audit: app.audit,
      log: app.log.child({ feature: 'alerts' }),
      queue: hasSinks(config) ? app.queues : undefined,
    })
    app.alertRelay.connect(alerts)
    app.decorate('alerts', alerts)
    if (http) await app.register(alertRoutes)
  },
  { name: 'tessera-alerts', dependencies: ['tessera-infra', 'tessera-audit', 'tessera-settings', 'tessera-sessions'] },
)
