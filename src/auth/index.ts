// The auth plugin: sign-in (password and OIDC), logout, password change; and, ahead of
// every route, CORS, the rate limits and the Origin check, in that order (a refused
// cross-site request still spends its budget). Decorates `login`, `loginHistory` and `authKeys`.
import { findFlaw } from '../infra/input-hygiene.js'
import fp from 'fastify-plugin'
import type { FeatureOptions } from '../sessions/index.js'
import { installGuards, requestInfo } from '../sessions/guards.js'
import { registerCors } from './cors.js'
import { type AuthKeys, authKeys } from './keys.js'
import { Login } from './login.js'
import { LoginHistory } from './login-history.js'
import { oidcRoutes } from './oidc-routes.js'
import { installRateLimits } from './rate-limits.js'
import { authRoutes } from './routes.js'

declare module 'fastify' {
  interface FastifyInstance {
    login: Login
    /** the auth feature's Redis keys (keys.ts): failed-login counts, lockouts, used ID tokens */
    authKeys: AuthKeys
    /** Login history (login_attempts): the admin's list, the cleanup's retention. */
    loginHistory: LoginHistory
  }
}

export default fp<FeatureOptions>(
  async (app, { http = true }) => {
    const { config, database } = app
    app.decorate('authKeys', authKeys(app.keys))
    const login = new Login({
      db: database.db,
      redis: app.redis,
      keys: app.authKeys,
      metrics: app.metrics,
      audit: app.audit,
      bus: app.bus,
      settings: app.settings,
      sessions: app.sessions,
      platforms: app.platforms,
      alerts: app.alertRelay,
      log: app.log,
    })
    app.decorate('login', login)
    app.decorate('loginHistory', new LoginHistory(database.db))
    if (!http) return
    registerCors(app, config)
    await installRateLimits(app, {
      onLoginLimited: (req) => {
        // A hook's request: the body is login's, read with care (no route types here).
        const body = req.body
        const username = typeof body === 'object' && body !== null && 'username' in body ? body.username : undefined
        // Limits run before validation: a name PostgreSQL cannot store is recorded as no name.
        return login.recordRateLimited(typeof username === 'string' && !findFlaw(username) ? username : null, requestInfo(req))
      },
    })
    installGuards(app, config.allowedOrigins)
    await app.register(authRoutes, { login })
    await app.register(oidcRoutes, { login })
  },
  { name: 'tessera-auth', dependencies: ['tessera-infra', 'tessera-audit', 'tessera-settings', 'tessera-sessions', 'tessera-platforms'] },
)
