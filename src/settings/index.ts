// The settings plugin: decorates `settings`, the runtime Settings record (created on first start).
import fp from 'fastify-plugin'
import { SettingsService } from './service.js'

declare module 'fastify' {
  interface FastifyInstance {
    settings: SettingsService
  }
}

export default fp(
  async (app) => {
    const settings = new SettingsService(app.database.db, app.audit, app.config.initialSettings)
    await settings.ensure()
    app.decorate('settings', settings)
  },
  { name: 'tessera-settings', dependencies: ['tessera-infra', 'tessera-audit'] },
)
