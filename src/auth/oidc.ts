// Sign-in with an identity provider (POST /api/auth/oidc): its ID token is verified with
// jose against the issuer's keys (JWKS, found through its OpenID configuration): signature,
// issuer, audience, expiry, not-before and, when the client gives one, the nonce; a token
// opens one session only. Its subject (or a verified e-mail address) names the account.
import { createHash, randomBytes } from 'node:crypto'
import { eq, sql } from 'drizzle-orm'
import type { Redis } from 'ioredis'
import { createRemoteJWKSet, errors as joseErrors, type JWTPayload, jwtVerify } from 'jose'
import { users } from '../../db/schema.js'
import type { Db } from '../infra/db.js'
import { identityProviderUnavailable, invalidToken } from './errors.js'
import type { AuthKeys } from './keys.js'
import { createUser, type UserRow } from './users.js'

export interface OidcConfig {
  issuer: string
  audience: string
  autoCreate: boolean
}

export interface OidcDeps {
  db: Db
  redis: Redis
  keys: AuthKeys
  /** Fetch for the discovery document (tests may point it elsewhere); the global one by default. */
  fetch?: typeof fetch
}


/** What a token proves: the claims, and the account they name. */
export interface OidcIdentity {
  claims: JWTPayload & { email?: string; email_verified?: boolean; preferred_username?: string; nonce?: string }
  subject: string
}

export class Oidc {
  private keySet: ReturnType<typeof createRemoteJWKSet> | undefined

  constructor(
    private readonly config: OidcConfig,
    private readonly d: OidcDeps,
  ) {}

  /** Verifies the token (and the nonce the client expects, when it gives one). */
  async verify(idToken: string, nonce: string | undefined): Promise<OidcIdentity> {
    const keys = await this.keys()
    let claims: OidcIdentity['claims']
    try {
      ;({ payload: claims } = await jwtVerify(idToken, keys, { issuer: this.config.issuer, audience: this.config.audience, clockTolerance: 5 }))
    } catch (err) {
      throw invalidToken(reasonOf(err))
    }
    if (typeof claims.sub !== 'string' || claims.sub === '') throw invalidToken('it names no subject')
    if (nonce !== undefined && claims.nonce !== nonce) throw invalidToken('its nonce is not the one this sign-in asked for')
    return { claims, subject: `${this.config.issuer}#${claims.sub}` }
  }

  /** A token opens one session: a second use of it is refused, until it would have expired anyway. */
  async spend(idToken: string, claims: JWTPayload): Promise<void> {
    const hash = createHash('sha256').update(idToken).digest('hex')
    const ttlMs = Math.max(1000, (claims.exp ?? 0) * 1000 - Date.now() + 10_000)
    const fresh = await this.d.redis.set(this.d.keys.usedIdToken(hash), '1', 'PX', ttlMs, 'NX')
    if (fresh !== 'OK') throw invalidToken('it has already been used to sign in')
  }

  /** Gives a spent token back (its sign-in failed before a session opened, e.g. at the session limit). */
  async unspend(idToken: string): Promise<void> {
    await this.d.redis.del(this.d.keys.usedIdToken(createHash('sha256').update(idToken).digest('hex')))
  }

  /**
   * The account of a verified identity: the one linked to its subject; else the one with its
   * verified e-mail address, linked from now on; else a new one when OIDC_AUTO_CREATE is on.
   */
  async accountOf({ claims, subject }: OidcIdentity): Promise<UserRow> {
    const [linked] = await this.d.db.select().from(users).where(eq(users.oidcSubject, subject))
    if (linked) return linked
    if (claims.email && claims.email_verified === true) {
      const [byEmail] = await this.d.db
        .update(users)
        .set({ oidcSubject: subject })
        .where(sql`lower(${users.email}) = ${claims.email.toLowerCase()} and ${users.oidcSubject} is null`)
        .returning()
      if (byEmail) return byEmail
    }
    if (!this.config.autoCreate) throw invalidToken('no account is linked to this identity; ask an administrator for one')
    return this.create(claims, subject)
  }

  private async create(claims: OidcIdentity['claims'], subject: string): Promise<UserRow> {
    const base = usernameFrom(claims)
    for (let n = 0; n < 20; n++) {
      const username = n === 0 ? base : `${base}-${n + 1}`
      try {
        // A password nobody knows: this account signs in through its identity provider.
        const user = await createUser(this.d.db, { username, email: claims.email_verified === true ? (claims.email ?? null) : null, password: randomBytes(32).toString('base64url'), role: 'user' })
        const [row] = await this.d.db.update(users).set({ oidcSubject: subject }).where(eq(users.id, user.id)).returning()
        return row!
      } catch (err) {
        if ((err as { code?: string }).code !== 'USERNAME_TAKEN') throw err
      }
    }
    throw invalidToken('no free username could be made for this identity')
  }

  /** The issuer's key set, found through its discovery document once. */
  private async keys(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    if (this.keySet) return this.keySet
    const fetcher = this.d.fetch ?? fetch
    let jwksUri: unknown
    try {
      const res = await fetcher(new URL('.well-known/openid-configuration', this.config.issuer.endsWith('/') ? this.config.issuer : `${this.config.issuer}/`))
      if (!res.ok) throw new Error(`status ${res.status}`)
      jwksUri = ((await res.json()) as { jwks_uri?: unknown }).jwks_uri
    } catch {
      throw identityProviderUnavailable()
    }
    if (typeof jwksUri !== 'string') throw identityProviderUnavailable()
    this.keySet = createRemoteJWKSet(new URL(jwksUri))
    return this.keySet
  }
}

function reasonOf(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return 'it has expired'
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    const claim = err.claim
    if (claim === 'iss') return 'it was issued by another identity provider'
    if (claim === 'aud') return 'it was issued for another client'
    if (claim === 'nbf') return 'it is not valid yet'
    return `its ${claim} claim is not accepted`
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'its signature is not valid'
  if (err instanceof joseErrors.JWKSNoMatchingKey) return 'it is signed with a key the identity provider does not publish'
  if (err instanceof joseErrors.JWKSTimeout) throw identityProviderUnavailable()
  return 'it is not a well-formed, signed ID token'
}

/** A username from the token: its preferred username, else the e-mail's local part, else "user". */
function usernameFrom(claims: OidcIdentity['claims']): string {
  const raw = claims.preferred_username ?? claims.email?.split('@')[0] ?? 'user'
  const cleaned = raw.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[-.]+|[-.]+$/g, '').slice(0, 40)
  return cleaned.length >= 2 ? cleaned : 'user'
}
