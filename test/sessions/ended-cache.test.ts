// The hot token cache never keeps an ended session valid (issue 4, audit item d): a
// request that read the row just before the end cannot write the stale "active" record
// back, and the session-ended job leaves the ended record in the cache.
import t from 'tap'
import { hashToken } from '../../src/sessions/tokens.js'
import { ADMIN_PASSWORD, build } from '../helpers/app.js'
import { until } from '../helpers/wait.js'

t.test('a stale "active" record written back after the end does not make the token valid again', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  const tokenHash = hashToken(ada.sid!)
  const { store } = app.ctx
  await app.resources.redis.del(app.ctx.keys.sessionByToken(tokenHash))
  // A request misses the cache and reads the row while the session is still active…
  const readBeforeTheEnd = (await store.findById(ada.sessionId!))!
  await app.resources.redis.del(app.ctx.keys.sessionByToken(tokenHash))
  // …the session ends…
  await app.ctx.sessions.end([ada.sessionId!], 'admin', { actorUserId: 1 })
  // …and only then does that request fill the cache.
  await store.cache(tokenHash, readBeforeTheEnd)
  const res = await ada.get('/api/session_state')
  t.equal(res.statusCode, 401, 'the token is refused')
  t.match(res.json(), { error: { code: 'SESSION_TERMINATED', reason: 'admin' } })
})

t.test('the session-ended job leaves the ended record in the cache', async (t) => {
  const app = await build(t, {}, { workers: true })
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  const key = app.ctx.keys.sessionByToken(hashToken(ada.sid!))
  await app.ctx.sessions.end([ada.sessionId!], 'logout')
  await app.resources.redis.del(key) // as if the ending died before it wrote the cache
  await until('the job', async () => (await app.ctx.database.sql`select finalized_at from sessions where id = ${ada.sessionId!}`)[0]!.finalized_at)
  t.match(JSON.parse((await app.resources.redis.get(key))!), { id: ada.sessionId, status: 'ended', endReason: 'logout' }, 'the cache holds the ended record')
  t.ok((await app.resources.redis.pttl(key)) <= app.ctx.config.eventLog.ttlSeconds * 1000, 'for a short while only')
})

t.test('a record read before a role change cannot put the old role back in the cache', async (t) => {
  const app = await build(t)
  const { id } = await app.user('ada', { role: 'admin' })
  const ada = await app.client().signIn('ada')
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  const tokenHash = hashToken(ada.sid!)
  await app.resources.redis.del(app.ctx.keys.sessionByToken(tokenHash))
  // A request misses the cache and reads ada's row while she is still an admin…
  const readBeforeTheChange = (await app.ctx.store.findById(ada.sessionId!))!
  // …an admin demotes her…
  t.equal((await admin.patch(`/admin/users/${id}`, { role: 'user' })).statusCode, 200)
  // …and only then does that request fill the cache.
  await app.ctx.store.cache(tokenHash, readBeforeTheChange)
  t.equal((await ada.get('/admin/sessions')).statusCode, 403, 'she is no admin any more')
  t.match((await ada.get('/api/session_state')).json(), { user: { role: 'user' } })
})

t.test('refreshing a user’s cached records never brings an ended session back', async (t) => {
  const app = await build(t)
  const { id } = await app.user('ada')
  const ada = await app.client().signIn('ada')
  const tokenHash = hashToken(ada.sid!)
  // The refresh read the rows while the session was live; the ending wrote its record since.
  const live = (await app.ctx.store.findById(ada.sessionId!))!
  await app.ctx.sessions.end([ada.sessionId!], 'admin', { actorUserId: 1 })
  await app.ctx.database.sql`update sessions set status = 'active' where id = ${live.id}` // as the refresh's read saw it
  await app.ctx.sessions.refreshUser(id)
  await app.ctx.database.sql`update sessions set status = 'ended' where id = ${live.id}`
  t.match(JSON.parse((await app.resources.redis.get(app.ctx.keys.sessionByToken(tokenHash)))!), { status: 'ended' })
  t.match((await ada.get('/api/session_state')).json(), { error: { code: 'SESSION_TERMINATED' } })
})
