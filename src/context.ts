// What every feature is handed: connections and services, built once by buildApp.
import type { Redis } from 'ioredis'
import type { Alerts } from './alerts/service.js'
import type { Audit } from './audit/service.js'
import type { Config } from './config.js'
import type { Database } from './infra/db.js'
import type { RedisKeys } from './infra/keys.js'
import type { Metrics } from './infra/metrics.js'
import type { Locks } from './locks/service.js'
import type { Queues } from './jobs/queues.js'
import type { EventBus } from './infra/bus.js'
import type { Sessions } from './sessions/service.js'
import type { StateCache } from './sessions/state-cache.js'
import type { SessionEndings } from './sessions/endings.js'
import type { SessionStore } from './sessions/store.js'
import type { SettingsService } from './settings/service.js'
import type { Uploads } from './uploads/service.js'

export interface AppContext {
  config: Config
  secret: string
  database: Database
  redis: Redis
  keys: RedisKeys
  metrics: Metrics
  bus: EventBus
  audit: Audit
  settings: SettingsService
  sessions: Sessions
  locks: Locks
  store: SessionStore
  endings: SessionEndings
  states: StateCache
  queues: Queues
  alerts: Alerts
  uploads: Uploads
}
