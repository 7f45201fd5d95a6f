// The infra plugin: the connections and shared machinery every feature is built on,
// decorated on the Fastify instance. Connections are opened by resources.ts and handed in.
import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import type { Config } from '../config.js'
import { EventBus } from './bus.js'
import type { Database } from './db.js'
import { type InfraKeys, infraKeys } from './keys.js'
import { createMetrics, type Metrics } from './metrics.js'
import { Queues } from './queues.js'
import { redisTarget } from './redis.js'

export interface InfraOptions {
  config: Config
  database: Database
  redis: Redis
  /** SESSION_SECRET, or the generated one (resources.ts) */
  secret: string
}

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
    secret: string
    database: Database
    redis: Redis
    keys: InfraKeys
    metrics: Metrics
    bus: EventBus
    /** BullMQ producers (the workers consume in jobs/). */
    queues: Queues
  }
}

export default fp<InfraOptions>(
  async (app, { config, database, redis, secret }) => {
    const keys = infraKeys(config.redisKeyPrefix)
    const metrics = createMetrics()
    metrics.dbPool.set(config.databasePoolMax)
    metrics.sources.poolUsage = () => database.poolUsage()
    app.decorate('config', config)
    app.decorate('secret', secret)
    app.decorate('database', database)
    app.decorate('redis', redis)
    app.decorate('keys', keys)
    app.decorate('metrics', metrics)
    app.decorate('bus', new EventBus({ redis, keys, metrics, eventLog: config.eventLog }))
    app.decorate('queues', new Queues(redisTarget(config), keys.bullPrefix, config.eventLog.ttlSeconds))
  },
  { name: 'tessera-infra', fastify: '5.x' },
)
