// The realtime plugin: this node's WebSocket hub (decorated as `hub`, with a Redis
// connection of its own for SUBSCRIBE), the socket tickets, and GET /ws.
import fp from 'fastify-plugin'
import { duplicateSubscriber } from '../infra/redis.js'
import { Hub } from './hub.js'
import { realtimeKeys } from './keys.js'
import { realtimeRoutes } from './routes.js'
import { Tickets } from './ticket.js'

declare module 'fastify' {
  interface FastifyInstance {
    hub: Hub
  }
}

export default fp(
  async (app) => {
    const { config, redis, keys } = app
    const subscriber = duplicateSubscriber(redis, 'tessera-subscriber')
    subscriber.on('error', () => {})
    await subscriber.connect()
    const hub = new Hub({ redis, subscriber, keys, metrics: app.metrics, config, sessions: app.sessions, presence: app.presence, log: app.log })
    await hub.start()
    app.decorate('hub', hub)
    const tickets = new Tickets(app.secret, redis, realtimeKeys(keys), config.realtimeTicketSeconds)
    await app.register(realtimeRoutes, { tickets })
  },
  { name: 'tessera-realtime', dependencies: ['tessera-infra', 'tessera-settings', 'tessera-sessions', 'tessera-presence'] },
)
