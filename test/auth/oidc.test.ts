// Sign-in with an identity provider: a local provider (discovery document and JWKS over
// real HTTP) with a key pair the test makes; tokens signed with jose, good and bad.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from 'jose'
import t, { type Test } from 'tap'
import { build, type TestApp } from '../helpers/app.js'

const AUDIENCE = 'tessera-web'
const UA = 'Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0 Safari/537.36'

/** A provider serving its discovery document and its public key; `sign` makes its ID tokens. */
async function provider(t: Test) {
  const { publicKey, privateKey } = await generateKeyPair('RS256')
  const jwk = { ...(await exportJWK(publicKey)), kid: 'key-1', alg: 'RS256', use: 'sig' }
  const server = createServer((req, res) => {
    res.setHeader('content-type', 'application/json')
    if (req.url === '/.well-known/openid-configuration') return res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }))
    if (req.url === '/jwks') return res.end(JSON.stringify({ keys: [jwk] }))
    res.statusCode = 404
    res.end('{}')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const sign = (claims: JWTPayload, opts: { key?: CryptoKey; issuer?: string; audience?: string; expires?: string | number; notBefore?: string | number } = {}) => {
    const jwt = new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: 'key-1' })
      .setIssuer(opts.issuer ?? issuer)
      .setAudience(opts.audience ?? AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(opts.expires ?? '5m')
    if (opts.notBefore !== undefined) jwt.setNotBefore(opts.notBefore)
    return jwt.sign(opts.key ?? privateKey)
  }
  return { issuer, sign }
}

const signIn = (app: TestApp, body: Record<string, unknown>) => app.app.inject({ method: 'POST', url: '/api/auth/oidc', payload: body, headers: { 'user-agent': UA } })

t.test('an ID token of the configured provider opens a session like a password sign-in', async (t) => {
  const idp = await provider(t)
  const app = await build(t, { OIDC_ISSUER: idp.issuer, OIDC_AUDIENCE: AUDIENCE })
  await app.user('ada')
  const good = await idp.sign({ sub: 'ada-at-idp', email: 'ada@example.com', email_verified: true, nonce: 'n-1' })
  const res = await signIn(app, { idToken: good, nonce: 'n-1' })
  t.equal(res.statusCode, 200, res.body)
  t.match(res.json(), { user: { username: 'ada' }, session: { username: 'ada' }, csrfToken: String })
  const sid = res.cookies.find((c) => c.name === 'sid')
  t.ok(sid?.value, 'with the session cookie')
  const state = await app.app.inject({ method: 'GET', url: '/api/session_state', headers: { cookie: `sid=${sid!.value}`, 'user-agent': UA } })
  t.equal(state.statusCode, 200, 'a working session')
  const [row] = await app.resources.database.sql`select method, success, reason from login_attempts where success order by id desc limit 1`
  t.match(row, { method: 'oidc', success: true, reason: 'ok' }, 'in login history with method oidc')
  const [user] = await app.resources.database.sql`select oidc_subject from users where username = 'ada'`
  t.equal(user!.oidc_subject, `${idp.issuer}#ada-at-idp`, 'the verified e-mail linked the account to the subject')

  const again = await signIn(app, { idToken: good, nonce: 'n-1' })
  t.equal(again.statusCode, 401, 'the same token a second time')
  t.match(again.json(), { error: { code: 'INVALID_TOKEN', message: /already been used/ } })
  const bySubject = await signIn(app, { idToken: await idp.sign({ sub: 'ada-at-idp' }) })
  t.equal(bySubject.statusCode, 200, 'from now on the subject alone names the account')
})

t.test('bad tokens are refused with INVALID_TOKEN and the reason, and recorded', async (t) => {
  const idp = await provider(t)
  const other = await provider(t)
  const app = await build(t, { OIDC_ISSUER: idp.issuer, OIDC_AUDIENCE: AUDIENCE })
  await app.user('ada')
  await app.resources.database.sql`update users set oidc_subject = ${`${idp.issuer}#ada`} where username = 'ada'`
  const { privateKey: stranger } = await generateKeyPair('RS256')
  const cases: [string, string, RegExp][] = [
    ['wrong issuer', await idp.sign({ sub: 'ada' }, { issuer: other.issuer }), /another identity provider/],
    ['wrong audience', await idp.sign({ sub: 'ada' }, { audience: 'someone-else' }), /another client/],
    ['expired', await idp.sign({ sub: 'ada' }, { expires: Math.floor(Date.now() / 1000) - 600 }), /expired/],
    ['not yet valid', await idp.sign({ sub: 'ada' }, { notBefore: Math.floor(Date.now() / 1000) + 600 }), /not valid yet/],
    ['bad signature', await idp.sign({ sub: 'ada' }, { key: stranger }), /signature/],
    ['not a JWT', 'not-a-token', /well-formed/],
  ]
  for (const [what, idToken, message] of cases) {
    const res = await signIn(app, { idToken })
    t.equal(res.statusCode, 401, what)
    t.match(res.json(), { error: { code: 'INVALID_TOKEN', message } }, what)
    t.notOk(res.cookies.some((c) => c.name === 'sid' && c.value), `${what}: no cookie`)
  }
  const nonce = await idp.sign({ sub: 'ada', nonce: 'expected' })
  const replay = await signIn(app, { idToken: nonce, nonce: 'another' })
  t.equal(replay.statusCode, 401, 'a token replayed with another nonce')
  t.match(replay.json(), { error: { code: 'INVALID_TOKEN', message: /nonce/ } })
  t.equal((await signIn(app, { idToken: nonce, nonce: 'expected' })).statusCode, 200, 'with its own nonce it still works (it was not spent)')
  const failures = await app.resources.database.sql`select count(*)::int as n from login_attempts where method = 'oidc' and not success and reason = 'invalid_token'`
  t.equal(failures[0]!.n, cases.length + 1, 'every refusal is in login history')
})

t.test('an unknown identity: refused, unless accounts are made on first sign-in', async (t) => {
  const idp = await provider(t)
  const strict = await build(t, { OIDC_ISSUER: idp.issuer, OIDC_AUDIENCE: AUDIENCE })
  const res = await signIn(strict, { idToken: await idp.sign({ sub: 'grace', preferred_username: 'grace' }) })
  t.equal(res.statusCode, 401)
  t.match(res.json(), { error: { code: 'INVALID_TOKEN', message: /no account is linked/ } })

  const open = await build(t, { OIDC_ISSUER: idp.issuer, OIDC_AUDIENCE: AUDIENCE, OIDC_AUTO_CREATE: 'true' })
  const created = await signIn(open, { idToken: await idp.sign({ sub: 'grace', preferred_username: 'Grace Hopper', email: 'grace@example.com', email_verified: true }) })
  t.equal(created.statusCode, 200, created.body)
  t.match(created.json(), { user: { username: 'grace-hopper', email: 'grace@example.com', role: 'user' } })
  const unverified = await signIn(open, { idToken: await idp.sign({ sub: 'other', email: 'ada@example.com', email_verified: false }) })
  t.equal(unverified.statusCode, 200)
  t.equal(unverified.json().user.email, null, 'an unverified e-mail is not taken')
})

t.test('a locked account stays locked whatever proves who it is; without a provider the route is 404', async (t) => {
  const idp = await provider(t)
  const app = await build(t, { OIDC_ISSUER: idp.issuer, OIDC_AUDIENCE: AUDIENCE })
  await app.user('ada')
  await app.resources.database.sql`update users set oidc_subject = ${`${idp.issuer}#ada`}, locked_until = now() + interval '10 minutes' where username = 'ada'`
  const locked = await signIn(app, { idToken: await idp.sign({ sub: 'ada' }) })
  t.equal(locked.statusCode, 423)
  t.equal(locked.json().error.code, 'ACCOUNT_LOCKED')

  const none = await build(t)
  const res = await signIn(none, { idToken: 'x' })
  t.equal(res.statusCode, 404)
  t.equal(res.json().error.code, 'NOT_FOUND')
})
