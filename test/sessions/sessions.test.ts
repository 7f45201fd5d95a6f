import t from 'tap'
import { deleteKeysWithPrefix } from '../../src/infra/redis.js'
import { build, type TestApp } from '../helpers/app.js'

/** Moves a session's clock: its last activity `seconds` into the past, in PostgreSQL and Redis. */
async function idleFor(app: TestApp, sessionId: string, seconds: number) {
  const at = Date.now() - seconds * 1000
  await app.ctx.database.sql`update sessions set last_activity = ${new Date(at)} where id = ${sessionId}`
  await app.resources.redis.hset(app.ctx.keys.sessionPresence(sessionId), 'lastActivity', at)
}

/** Ends a session's lifetime now, in PostgreSQL, and drops the cached copy. */
async function outlive(app: TestApp, sessionId: string) {
  const [row] = await app.ctx.database.sql`update sessions set expires_at = now() - interval '1 second' where id = ${sessionId} returning token_hash`
  await app.resources.redis.del(app.ctx.keys.sessionByToken(row!.token_hash as string))
}

t.test('no cookie or an unknown token is 401 UNAUTHENTICATED', async (t) => {
  const app = await build(t)
  for (const headers of [{}, { cookie: 'sid=unknown-token' }, { cookie: `sid=${'x'.repeat(500)}` }] as Record<string, string>[]) {
    const res = await app.client().get('/api/session_state', headers)
    t.equal(res.statusCode, 401)
    t.same(res.json(), { error: { code: 'UNAUTHENTICATED', message: 'Sign in to continue.' } })
  }
})

t.test('GET /api/session_state is the snapshot a tab syncs from', async (t) => {
  const app = await build(t)
  await app.user('ada', { platforms: ['Pixelfed'] })
  const ada = await app.client().signIn('ada')
  const res = await ada.get('/api/session_state')
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.match(body, {
    user: { id: Number, username: 'ada', email: 'ada@example.com', role: 'user' },
    platform: { id: Number, name: 'Pixelfed', type: 'mastodon', instanceUrl: String, isDefault: true },
    session: { id: ada.sessionId, createdAt: String, lastActivity: String, expiresAt: String, idleExpiresAt: String, status: 'active', tabs: 0 },
    version: 1,
    seq: 0,
    timestamp: String,
  })
})

t.test('a session past its lifetime is SESSION_EXPIRED with reason lifetime, and stays ended', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  const token = ada.sid
  await outlive(app, ada.sessionId!)
  const res = await ada.get('/api/session_state')
  t.equal(res.statusCode, 401)
  t.match(res.json(), { error: { code: 'SESSION_EXPIRED', reason: 'lifetime' } })
  ada.sid = token
  t.match((await ada.get('/api/platforms')).json(), { error: { code: 'SESSION_EXPIRED', reason: 'lifetime' } })
  const [row] = await app.ctx.database.sql`select status, end_reason from sessions where id = ${ada.sessionId!}`
  t.match(row, { status: 'ended', end_reason: 'lifetime' })
})

t.test('a session quiet past the idle timeout is SESSION_EXPIRED with reason idle_timeout', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  await idleFor(app, ada.sessionId!, 7201)
  const res = await ada.get('/api/platforms')
  t.match(res.json(), { error: { code: 'SESSION_EXPIRED', reason: 'idle_timeout' } })
})

t.test('requests keep a session alive, polling does not', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  const id = ada.sessionId!
  await app.ctx.settings.update({ idleAfterSeconds: 60, idleTimeoutSeconds: 120, idleWarningSeconds: 0 }, 1)
  const lastActivity = async () => (await app.ctx.store.hotLastActivity(id))!
  // An active request moves last activity on…
  await idleFor(app, id, 100)
  const sent = Date.now()
  t.equal((await ada.get('/api/platforms')).statusCode, 200)
  t.ok((await lastActivity()) >= sent - 1000, 'a request is activity: last activity is now')
  // …while session_state and validate polls do not.
  await idleFor(app, id, 100)
  const quiet = await lastActivity()
  const polled = await ada.get('/api/session_state')
  t.equal(polled.statusCode, 200)
  t.equal(polled.json().session.status, 'idle', 'shown as idle after idleAfterSeconds')
  t.equal((await ada.post('/api/session/validate')).statusCode, 200)
  t.equal(await lastActivity(), quiet, 'the polls left last activity where it was')
  await idleFor(app, id, 121)
  t.match((await ada.post('/api/session/validate')).json(), { error: { code: 'SESSION_EXPIRED', reason: 'idle_timeout' } })
})

t.test('POST /api/session/validate answers with the session deadlines', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  const res = await ada.post('/api/session/validate')
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.match(body, { valid: true, session: { id: ada.sessionId, status: 'active', expiresAt: String, idleExpiresAt: String }, timestamp: String })
  const idleIn = Date.parse(body.session.idleExpiresAt) - Date.now()
  t.ok(idleIn > 7000 * 1000 && idleIn <= 7200 * 1000, 'idle deadline is idleTimeoutSeconds after the last activity')
  t.equal((await app.client().post('/api/session/validate')).statusCode, 401)
})

t.test('cleanup ends the caller’s other sessions that are past their limits', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const here = await app.client().signIn('ada')
  const stale = await app.client().signIn('ada')
  const old = await app.client().signIn('ada')
  const fresh = await app.client().signIn('ada')
  await idleFor(app, stale.sessionId!, 8000)
  await app.ctx.database.sql`update sessions set expires_at = now() - interval '1 second' where id = ${old.sessionId!}`
  const res = await here.post('/api/session/cleanup')
  t.equal(res.statusCode, 200)
  t.match(res.json(), { cleanedSessions: 2, message: String })
  const rows = await app.ctx.database.sql`select id, status, end_reason from sessions order by created_at`
  t.match(rows, [
    { id: here.sessionId, status: 'active' },
    { id: stale.sessionId, status: 'ended', end_reason: 'idle_timeout' },
    { id: old.sessionId, status: 'ended', end_reason: 'lifetime' },
    { id: fresh.sessionId, status: 'active' },
  ])
  t.same((await here.post('/api/session/cleanup')).json().cleanedSessions, 0)
})

t.test('your devices: list your sessions and end one; other users’ sessions are invisible', async (t) => {
  const app = await build(t)
  await app.user('ada')
  await app.user('bob')
  const laptop = await app.client().signIn('ada')
  const phone = await app.client({ 'user-agent': 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Version/17.0 Mobile/15E148 Safari/604.1' }).signIn('ada')
  const bob = await app.client().signIn('bob')
  const list = await laptop.get('/api/sessions')
  t.equal(list.statusCode, 200)
  const items = list.json().items
  t.equal(items.length, 2)
  t.match(items.find((s: { id: string }) => s.id === laptop.sessionId), { current: true, username: 'ada', device: { os: 'Linux' } })
  t.match(items.find((s: { id: string }) => s.id === phone.sessionId), { current: false, device: { os: 'iOS', type: 'mobile' } })

  for (const id of [bob.sessionId!, bob.sessionId!.toUpperCase(), '00000000-0000-4000-8000-000000000000']) {
    const res = await laptop.delete(`/api/sessions/${id}`)
    t.equal(res.statusCode, 404, id)
    t.equal(res.json().error.code, 'SESSION_NOT_FOUND')
  }
  // A path id that is not a UUID at all is a wrong type: 400, naming the parameter.
  for (const id of ['not-a-uuid', '123', `${phone.sessionId}0`]) {
    const res = await laptop.delete(`/api/sessions/${id}`)
    t.equal(res.statusCode, 400, id)
    t.match(res.json(), { error: { code: 'VALIDATION_FAILED', message: /params\.id/ } })
  }
  t.equal((await bob.get('/api/session_state')).statusCode, 200, "bob's session was not touched")
  t.equal((await phone.get('/api/session_state')).statusCode, 200, 'nothing was revoked by the refused ids')
  t.equal((await laptop.delete(`/api/sessions/${phone.sessionId!.toUpperCase()}`)).statusCode, 204, 'an upper-case id names the same session')
  t.match((await phone.get('/api/session_state')).json(), { error: { code: 'SESSION_TERMINATED', reason: 'revoked_by_user' } })
  t.equal((await laptop.get('/api/sessions')).json().items.length, 1)
  t.equal((await laptop.delete(`/api/sessions/${phone.sessionId}`)).statusCode, 404, 'an ended session is gone from your devices')
})

t.test('a session used from another browser fingerprint is ended as compromised', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  const thief = app.client({ 'user-agent': 'curl/8.0' })
  thief.sid = ada.sid
  const res = await thief.get('/api/session_state')
  t.match(res.json(), { error: { code: 'SESSION_TERMINATED', reason: 'compromised' } })
  t.match((await ada.get('/api/session_state')).json(), { error: { code: 'SESSION_TERMINATED', reason: 'compromised' } }, 'the owner is signed out too')
})

t.test('with fingerprinting off, a changed user agent is accepted', async (t) => {
  const app = await build(t, { SESSION_ENABLE_FINGERPRINTING: 'false' })
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  const other = app.client({ 'user-agent': 'curl/8.0', 'accept-language': 'nb' })
  other.sid = ada.sid
  t.equal((await other.get('/api/session_state')).statusCode, 200)
})

t.test('flushing Redis between two requests signs nobody out', async (t) => {
  const app = await build(t)
  await app.user('ada', { platforms: ['A', 'B'] })
  const ada = await app.client().signIn('ada')
  const [, second] = (await ada.get('/api/platforms')).json().items
  t.equal((await ada.post(`/api/switch_platform/${second.id}`)).statusCode, 200)
  const before = (await ada.get('/api/session_state')).json()
  t.ok((await deleteKeysWithPrefix(app.resources.redis, app.prefix)) > 0, 'keys were there to flush')
  const after = await ada.get('/api/session_state')
  t.equal(after.statusCode, 200)
  t.equal(after.json().session.id, before.session.id)
  t.same(after.json().platform, before.platform, 'the active platform came back from PostgreSQL')
  t.equal(after.json().version, before.version)
  t.equal((await ada.post('/api/auth/logout')).statusCode, 204, 'state-changing requests work too')
})

t.test('an ended session stays refused after Redis is flushed', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  const token = ada.sid
  await ada.post('/api/auth/logout')
  await deleteKeysWithPrefix(app.resources.redis, app.prefix)
  ada.sid = token
  t.match((await ada.get('/api/session_state')).json(), { error: { code: 'SESSION_TERMINATED', reason: 'logout' } })
})
