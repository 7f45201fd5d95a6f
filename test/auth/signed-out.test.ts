// Every refusal of the session cookie (UNAUTHENTICATED, SESSION_EXPIRED,
// SESSION_TERMINATED) clears it, wherever it was thrown; other 401s leave it alone.
import t from 'tap'
import { build, PASSWORD, type TestApp } from '../helpers/app.js'

const cleared = (res: { headers: Record<string, unknown> }) => /(^|,\s*)sid=;/.test(String(res.headers['set-cookie'] ?? ''))

/** Ends a session in PostgreSQL only, as another node would just before its cache refresh lands. */
async function endBehindTheCache(app: TestApp, sessionId: string, reason: string) {
  await app.ctx.database.sql`update sessions set status = 'ended', end_reason = ${reason}, ended_at = now() where id = ${sessionId}`
}

t.test('SESSION_EXPIRED clears the cookie, like SESSION_TERMINATED', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  const [row] = await app.ctx.database.sql`update sessions set expires_at = now() - interval '1 second' where id = ${ada.sessionId!} returning token_hash`
  await app.resources.redis.del(app.ctx.keys.sessionByToken(row!.token_hash as string))
  const res = await ada.get('/api/session_state')
  t.match(res.json(), { error: { code: 'SESSION_EXPIRED', reason: 'lifetime' } })
  t.ok(cleared(res), 'Set-Cookie: sid=; (cleared)')
})

t.test('an unknown token is refused and cleared', async (t) => {
  const app = await build(t)
  const res = await app.client().get('/api/platforms', { cookie: 'sid=made-up' })
  t.equal(res.json().error.code, 'UNAUTHENTICATED')
  t.ok(cleared(res))
})

t.test('a switch that races the end of its session reports the real reason and clears the cookie', async (t) => {
  const app = await build(t)
  const { platformIds } = await app.user('ada', { platforms: ['A', 'B'] })
  for (const [reason, code] of [
    ['admin', 'SESSION_TERMINATED'],
    ['idle_timeout', 'SESSION_EXPIRED'],
  ] as const) {
    const ada = await app.client().signIn('ada')
    t.equal((await ada.get('/api/session_state')).statusCode, 200, 'the token is cached as active')
    await endBehindTheCache(app, ada.sessionId!, reason)
    const res = await ada.post(`/api/switch_platform/${platformIds[1]}`)
    t.equal(res.statusCode, 401, reason)
    t.match(res.json(), { error: { code, reason } })
    t.ok(cleared(res), `cookie cleared (${reason})`)
  }
})

t.test('revoking the current session through DELETE /api/sessions/:id clears the cookie', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const phone = await app.client().signIn('ada')
  const laptop = await app.client().signIn('ada')
  const other = await laptop.delete(`/api/sessions/${phone.sessionId}`)
  t.equal(other.statusCode, 204)
  t.notOk(cleared(other), 'revoking another device keeps this one signed in')
  const own = await laptop.delete(`/api/sessions/${laptop.sessionId}`)
  t.equal(own.statusCode, 204)
  t.ok(cleared(own), 'revoking this device signs this browser out')
  t.equal(laptop.sid, undefined)
})

t.test('a wrong current password is 401 INVALID_CREDENTIALS but keeps the session and its cookie', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  const res = await ada.post('/api/auth/password', { currentPassword: 'not-the-password', newPassword: 'a-new-long-password' })
  t.equal(res.statusCode, 401)
  t.equal(res.json().error.code, 'INVALID_CREDENTIALS')
  t.notOk(res.headers['set-cookie'], 'no Set-Cookie at all')
  t.equal((await ada.get('/api/session_state')).statusCode, 200, 'still signed in')
})

t.test('a bad metrics token does not sign the browser out', async (t) => {
  const app = await build(t, { METRICS_TOKEN: 'scrape-me-please' })
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  const res = await ada.get('/metrics')
  t.equal(res.statusCode, 401)
  t.notOk(cleared(res))
  t.equal((await ada.get('/api/session_state')).statusCode, 200)
})

t.test('a login that presents a cookie needs no CSRF token and ignores the cookie', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  const old = ada.sid!
  const res = await app.app.inject({ method: 'POST', url: '/api/auth/login', headers: { cookie: `sid=${old}` }, payload: { username: 'ada', password: PASSWORD } })
  t.equal(res.statusCode, 200, 'no X-CSRF-Token needed')
  const issued = res.cookies.find((c) => c.name === 'sid')!.value
  t.not(issued, old, 'a fresh token')
  t.not(res.json().session.id, ada.sessionId, 'a fresh session')
  t.equal((await ada.get('/api/session_state')).statusCode, 200, 'the presented session is left as it was')
})
