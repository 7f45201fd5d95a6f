// GET /api/session_state in one Redis step with the platform state cached in Redis
// (src/sessions/state-read.ts, state-cache.ts): what it serves must never be older than
// what another node changed or ended, and a Redis emptied of it must sign nobody out.
import t from 'tap'
import { deleteKeysWithPrefix } from '../../src/infra/redis.js'
import { hashToken } from '../../src/sessions/tokens.js'
import { ADMIN_PASSWORD, build, Client, type TestApp } from '../helpers/app.js'

/** The same browser (cookie and CSRF token) talking to another node. */
function onNode(node: { app: TestApp['app'] }, tab: Client): Client {
  const other = new Client(node.app, {})
  other.sid = tab.sid
  other.csrf = tab.csrf
  other.sessionId = tab.sessionId
  return other
}

async function state(tab: Client) {
  const res = await tab.get('/api/session_state')
  if (res.statusCode !== 200) throw new Error(`session_state answered ${res.statusCode}: ${res.body}`)
  return res.json() as { platform: { id: number; name: string; isDefault: boolean } | null; version: number; timestamp: string }
}

t.test('after a switch on another node, the next state on this one is the new one', async (t) => {
  const app = await build(t)
  const { platformIds } = await app.user('ada', { platforms: ['Alpha', 'Beta'] })
  const here = await app.client().signIn('ada')
  const there = onNode(await app.node({}, { ownConnections: true }), here)
  const before = await state(here)
  t.match(before, { platform: { id: platformIds[0], name: 'Alpha' } })
  const again = await state(here)
  t.same({ ...again, timestamp: before.timestamp }, before, 'read again (from the cache): the same state')

  t.equal((await there.post(`/api/switch_platform/${platformIds[1]}`)).statusCode, 200)
  const after = await state(here)
  t.match(after, { platform: { id: platformIds[1], name: 'Beta' }, version: before.version + 1 })
  t.match(await state(here), { platform: { id: platformIds[1] }, version: after.version }, 'and stays so')
})

t.test('a new default on another node shows at once, though it moves no version', async (t) => {
  const app = await build(t)
  await app.user('ada', { platforms: ['Alpha'] })
  const here = await app.client().signIn('ada')
  const there = onNode(await app.node({}, { ownConnections: true }), here)
  const before = await state(here)
  t.match(before, { platform: { name: 'Alpha', isDefault: true } })
  const created = await there.post('/api/platforms', { name: 'Gamma', type: 'mastodon', instanceUrl: 'https://gamma.example', isDefault: true })
  t.equal(created.statusCode, 201)
  t.match(await state(here), { platform: { name: 'Alpha', isDefault: false }, version: before.version })
})

t.test('the active platform deleted on another node: the next state has none', async (t) => {
  const app = await build(t)
  const { platformIds } = await app.user('ada', { platforms: ['Alpha', 'Beta'] })
  const here = await app.client().signIn('ada')
  const there = onNode(await app.node({}, { ownConnections: true }), here)
  const before = await state(here)
  t.equal((await there.delete(`/api/platforms/${platformIds[0]}`)).statusCode, 204)
  t.match(await state(here), { platform: null, version: before.version + 1 })
})

t.test('a session ended on another node is refused on its very next state request here', async (t) => {
  const app = await build(t)
  const { id: userId } = await app.user('ada')
  const other = await app.node({}, { ownConnections: true })
  const admin = onNode(other, await app.client().signIn('admin', ADMIN_PASSWORD))
  const cases = [
    ['revoked', 'revoked_by_user'],
    ['logout', 'logout'],
    ['admin', 'admin'],
    ['disabled', 'user_disabled'],
  ] as const
  for (const [how, reason] of cases) {
    const here = await app.client().signIn('ada')
    const phone = onNode(other, await app.client().signIn('ada'))
    await state(here)
    await state(here)
    if (how === 'revoked') t.equal((await phone.delete(`/api/sessions/${here.sessionId}`)).statusCode, 204)
    if (how === 'logout') t.equal((await onNode(other, here).post('/api/auth/logout')).statusCode, 204)
    if (how === 'admin') t.equal((await admin.delete(`/admin/sessions/${here.sessionId}`, { reason: 'test' })).statusCode, 200)
    if (how === 'disabled') t.equal((await admin.patch(`/admin/users/${userId}`, { disabled: true })).statusCode, 200)
    const res = await here.get('/api/session_state')
    t.equal(res.statusCode, 401, how)
    t.match(res.json(), { error: { code: 'SESSION_TERMINATED', reason } }, how)
    t.equal(here.sid, undefined, `${how}: the cookie is cleared`)
  }
})

t.test('Redis emptied: the state is served again from PostgreSQL, nobody is signed out', async (t) => {
  const app = await build(t)
  const { platformIds } = await app.user('ada', { platforms: ['Alpha', 'Beta'] })
  const here = await app.client().signIn('ada')
  t.equal((await here.post(`/api/switch_platform/${platformIds[1]}`)).statusCode, 200)
  const before = await state(here)
  await deleteKeysWithPrefix(app.resources.redis, app.prefix)
  t.match(await state(here), { platform: { id: platformIds[1] }, version: before.version }, 'rehydrated')
  t.match(await state(here), { platform: { id: platformIds[1] }, version: before.version }, 'and from the refilled cache')
})

t.test('presence lost while the token cache held on: session_state puts the session back on its deadline list', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const here = await app.client().signIn('ada')
  await state(here) // the token cache holds the record now
  const { redis, keys } = app.ctx
  const id = here.sessionId!
  const due = keys.deadlines(id)
  await redis.del(keys.sessionPresence(id))
  for (const list of due.lists) await redis.zrem(list, id)
  t.equal(await redis.exists(keys.sessionByToken(hashToken(here.sid!))), 1, 'the token cache still holds the record')
  const res = await here.get('/api/session_state')
  t.equal(res.statusCode, 200)
  const last = await redis.hget(keys.sessionPresence(id), 'lastActivity')
  t.ok(last, 'the presence hash is written again')
  t.equal(await redis.zscore(due.active, id), last, 'and the session is on due:active at its last activity, for the sweep to see')
})

t.test('presence lost while the token cache held on: any signed-in request writes it back and puts the session on due:active', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const here = await app.client().signIn('ada')
  const { redis, keys } = app.ctx
  const id = here.sessionId!
  const due = keys.deadlines(id)
  await redis.del(keys.sessionPresence(id))
  for (const list of due.lists) await redis.zrem(list, id)
  await redis.srem(due.dirty, id)
  const asked = Date.now()
  t.equal((await here.get('/api/platforms')).statusCode, 200)
  const last = Number(await redis.hget(keys.sessionPresence(id), 'lastActivity'))
  t.ok(last >= asked, 'the request is the last activity')
  t.equal(Number(await redis.zscore(due.active, id)), last, 'the session is on due:active at it, for the sweep to see')
  t.equal(await redis.sismember(due.dirty, id), 1, 'and marked for the write-behind')
  t.ok((await redis.pttl(keys.sessionPresence(id))) > 0, 'the presence hash expires with the session')
})

t.test('session_state spends the same API budget as the other routes, across nodes', async (t) => {
  const app = await build(t, { API_RATE_LIMIT: '4/min' })
  await app.user('ada')
  const here = await app.client().signIn('ada')
  const there = onNode(await app.node({}, { ownConnections: true }), here)
  const answers = [await here.get('/api/session_state'), await there.get('/api/platforms'), await there.get('/api/session_state'), await here.get('/api/platforms')]
  t.same(answers.map((r) => r.statusCode), [200, 200, 200, 200])
  t.same(answers.map((r) => r.headers['x-ratelimit-remaining']), ['3', '2', '1', '0'], 'one budget, counted down by both kinds of route')
  t.equal(answers[0]!.headers['x-ratelimit-limit'], '4')
  for (const tab of [here, there]) {
    const res = await tab.get('/api/session_state')
    t.equal(res.statusCode, 429)
    t.match(res.json(), { error: { code: 'RATE_LIMITED', retryAfterSeconds: Number } })
    t.ok(Number(res.headers['retry-after']) > 0, 'with Retry-After')
  }
  t.equal((await here.get('/api/platforms')).statusCode, 429, 'the other routes are limited too')
})

t.test('a state read before a change is never put in the cache after it', async (t) => {
  const app = await build(t)
  const { id: userId, platformIds } = await app.user('ada', { platforms: ['Alpha', 'Beta'] })
  const here = await app.client().signIn('ada')
  await state(here)
  const { redis, keys, states } = app.ctx
  const seen = { entry: '', gen: (await redis.get(keys.userStateGen(userId))) ?? '', writing: false }
  t.equal((await here.post(`/api/switch_platform/${platformIds[1]}`)).statusCode, 200)
  // A reader that saw the generation before the switch fills only under that generation: refused
  // (the entry filled before the switch stays, but under a generation no longer current).
  await redis.del(keys.sessionState(here.sessionId!))
  await states.resolve(here.sessionId!, userId, seen)
  t.equal(await redis.get(keys.sessionState(here.sessionId!)), null, 'nothing filled under the old generation')
  t.match(await state(here), { platform: { id: platformIds[1] } })
})
