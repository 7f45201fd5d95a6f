// The presence plugin: decorates `presence` (a session's open tabs and views in Redis).
// The idle sweep and the write-behind of last activity run in the workers (jobs/).
import fp from 'fastify-plugin'
import { Presence } from './service.js'

declare module 'fastify' {
  interface FastifyInstance {
    presence: Presence
  }
}

export default fp(
  async (app) => {
    app.decorate('presence', new Presence(app.redis, app.sessionKeys, app.config.ws.tabStaleMs, app.config.eventLog.ttlSeconds * 1000))
  },
  { name: 'tessera-presence', dependencies: ['tessera-infra', 'tessera-sessions'] },
)
