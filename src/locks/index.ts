// The locks plugin: decorates `locks` (named resource locks owned by a session; an ending
// releases them, and the session-ended job whatever that missed) and registers its routes.
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
    const locks = new Locks({ db: app.database.db, bus: app.bus, keys: app.sessionKeys, audit: app.audit })
    // An ending releases its session's locks in its own statement (SessionStore.markEnded); tabs hear it from here.
    app.sessions.announceLockReleasesWith(async (releases) => {
      await Promise.all(releases.map((r) => locks.announceRelease(r)))
    })
    app.decorate('locks', locks)
    if (http) await app.register(lockRoutes)
  },
  { name: 'tessera-locks', dependencies: ['tessera-infra', 'tessera-audit', 'tessera-sessions'] },
)
