// POST /api/auth/oidc: sign in with an identity provider's ID token (docs/api.md). 404 when no
// provider is configured (OIDC_ISSUER).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { AppError } from '../infra/errors.js'
import { oidcNotConfigured } from './errors.js'
import { errors, IdParam, Uuid } from '../infra/schemas.js'
import { parseDevice } from '../sessions/tokens.js'
import { requestInfo } from '../sessions/guards.js'
import type { Attempt, Login } from './login.js'
import { Oidc } from './oidc.js'
import { LoginReply, signedIn } from './routes.js'

const OidcBody = Type.Object(
  {
    idToken: Type.String({ minLength: 1, maxLength: 16_384, description: 'the ID token (a signed JWT) the identity provider gave the client' }),
    nonce: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'the nonce the client sent to the provider; the token must carry it' })),
    platformId: Type.Optional(IdParam),
    endSessionId: Type.Optional(Uuid),
  },
  { additionalProperties: false },
)

const notConfigured = oidcNotConfigured

export const oidcRoutes: FastifyPluginAsyncTypebox<{ login: Login }> = async (app, { login }) => {
  const { issuer, audience, autoCreate } = app.config.oidc
  const oidc = issuer && audience ? new Oidc({ issuer, audience, autoCreate }, { db: app.database.db, redis: app.redis, keys: app.authKeys }) : null

  app.post(
    '/api/auth/oidc',
    {
      schema: { tags: ['auth'], summary: "Sign in with the identity provider's ID token", body: OidcBody, response: { 200: LoginReply, ...errors } },
      config: { budget: 'login' },
    },
    async (req, reply) => {
      if (!oidc) throw notConfigured()
      const body = req.body
      const info = requestInfo(req)
      const attempt: Attempt = { username: '(identity provider)', userId: null, info, device: parseDevice(info.userAgent) }
      let user: Awaited<ReturnType<Oidc['accountOf']>>
      try {
        const identity = await oidc.verify(body.idToken, body.nonce)
        attempt.username = String(identity.claims.preferred_username ?? identity.claims.email ?? identity.claims.sub).slice(0, 200)
        user = await oidc.accountOf(identity)
        attempt.username = user.username
        attempt.userId = user.id
        await login.refuseLockedOrDisabled(user, attempt, 'oidc')
        await oidc.spend(body.idToken, identity.claims)
      } catch (err) {
        if (err instanceof AppError && err.code === 'INVALID_TOKEN') await login.recordFailure(attempt, 'invalid_token', 'oidc')
        throw err
      }
      try {
        const settings = await app.settings.get()
        const { opened } = await login.openFor(user, body, attempt, settings, 'oidc')
        return signedIn(reply, app, user, opened)
      } catch (err) {
        // Not signed in after all (the session limit, say): the token may be tried again.
        await oidc.unspend(body.idToken)
        throw err
      }
    },
  )
}

