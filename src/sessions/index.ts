// The sessions plugin: builds the session services and decorates them (`sessions`,
// `sessionKeys`, `sessionStore`, `states`, `endings`, `alertRelay`, `sessionDetails`), puts the sessions by status on
// /metrics, and registers the routes of the caller's own session.
import fp from 'fastify-plugin'
import { AlertRelay } from './alert-raiser.js'
import { type SessionSlotKeys, sessionKeys } from './keys.js'
import { SessionDetails } from './detail.js'
import { SessionEndings } from './endings.js'
import { sessionRoutes } from './routes.js'
import { Sessions } from './service.js'
import { StateCache } from './state-cache.js'
import { SessionStore } from './store.js'

export interface FeatureOptions {
  /** Register the feature's routes and hooks (false in a worker-only process and the CLI). */
  http?: boolean
}

declare module 'fastify' {
  interface FastifyInstance {
    sessions: Sessions
    /** infra's Redis keys with the session's own (keys.ts) */
    sessionKeys: SessionSlotKeys
    /** The sessions store; other features call `sessions` or `endings`, never this. */
    sessionStore: SessionStore
    /** The cached platform state of sessions. */
    states: StateCache
    /** The follow-up of endings, for the jobs. */
    endings: SessionEndings
    /** Where raised alerts go: the alerts plugin connects itself here. */
    alertRelay: AlertRelay
    /** Reads of the sessions table for the admin routes, the admin feed and the cleanup job. */
    sessionDetails: SessionDetails
  }
}

export default fp<FeatureOptions>(
  async (app, { http = true }) => {
    const { config, database, redis, settings, metrics } = app
    const keys: SessionSlotKeys = { ...app.keys, ...sessionKeys(app.keys) }
    app.decorate('sessionKeys', keys)
    const store = new SessionStore(database.db, redis, keys, config.eventLog.ttlSeconds, config.ws.tabStaleMs)
    const states = new StateCache(database.db, redis, keys)
    const alertRelay = new AlertRelay()
    const sessions = new Sessions({
      store,
      states,
      db: database.db,
      settings,
      bus: app.bus,
      keys,
      audit: app.audit,
      metrics,
      fingerprinting: config.fingerprinting,
      onEnded: (ended) => app.queues.enqueueEnded(ended),
      alerts: alertRelay,
      log: app.log.child({ feature: 'sessions' }),
    })
    // Sessions by status on every process's /metrics, workers' included.
    metrics.sources.sessionCounts = async () => store.countByStatus((await settings.get()).idleAfterSeconds)
    app.decorate('sessions', sessions)
    app.decorate('sessionStore', store)
    app.decorate('states', states)
    app.decorate('endings', new SessionEndings(store))
    app.decorate('alertRelay', alertRelay)
    app.decorate('sessionDetails', new SessionDetails(database.db))
    if (http) await app.register(sessionRoutes)
  },
  { name: 'tessera-sessions', dependencies: ['tessera-infra', 'tessera-audit', 'tessera-settings'] },
)
