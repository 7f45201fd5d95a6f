// Platforms (http.md, "Platforms"): the user's connections, and switching the one a
// session has active — atomically, with expectedVersion as a compare-and-set.
import t from 'tap'
import { build, type Client, type TestApp } from '../helpers/app.js'
import { listen, openTab, type TabClient } from '../helpers/ws.js'

interface Frame {
  type: string
  seq: number
  version?: number
  platform?: { id: number; name: string } | null
  previousPlatform?: { id: number; name: string } | null
  byTabId?: string | null
}

/** Two open tabs of a signed-in browser, welcomed. */
async function twoTabs(app: TestApp, client: Client): Promise<TabClient[]> {
  const address = await listen(app)
  return [(await openTab(address, client.sid!, { tabId: 'tab-A' })).tab, (await openTab(address, client.sid!, { tabId: 'tab-B' })).tab]
}

/** The frames in the session's event log (its Redis stream), oldest first. */
async function streamOf(app: TestApp, sessionId: string): Promise<Frame[]> {
  const entries = await app.ctx.redis.xrange(app.ctx.keys.sessionLog(sessionId), '-', '+')
  return entries.map(([, fields]) => JSON.parse(fields[fields.indexOf('f') + 1]!) as Frame)
}

const switches = async (app: TestApp, sessionId: string) => (await streamOf(app, sessionId)).filter((f) => f.type === 'platform.switched')

t.test('the platform list shows only the caller’s own connections', async (t) => {
  const app = await build(t)
  await app.user('ada', { platforms: ['Pixelfed', 'Mastodon'] })
  await app.user('bob', { platforms: ['Bobs'] })
  const ada = await app.client().signIn('ada')

  const res = await ada.get('/api/platforms')
  t.equal(res.statusCode, 200)
  const { items } = res.json()
  t.same(
    items.map((p: { name: string }) => p.name),
    ['Pixelfed', 'Mastodon'],
  )
  t.match(items[0], { id: Number, name: 'Pixelfed', type: 'mastodon', instanceUrl: 'https://pixelfed.example', isDefault: true })
  t.same(Object.keys(items[0]).sort(), ['id', 'instanceUrl', 'isDefault', 'name', 'type'])
  t.equal(items[1].isDefault, false)
})

t.test('a new connection is created, the first becomes the default, and isDefault moves it', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const ada = await app.client().signIn('ada')

  const first = await ada.post('/api/platforms', { name: 'My Pixelfed', type: 'pixelfed', instanceUrl: 'https://pixelfed.social' })
  t.equal(first.statusCode, 201)
  t.same(first.json(), { id: first.json().id, name: 'My Pixelfed', type: 'pixelfed', instanceUrl: 'https://pixelfed.social', isDefault: true })
  t.type(first.json().id, 'number')

  const second = await ada.post('/api/platforms', { name: 'Home', type: 'mastodon', instanceUrl: 'http://mastodon.example/' })
  t.equal(second.statusCode, 201)
  t.equal(second.json().isDefault, false, 'a later connection is not the default unless asked')

  const third = await ada.post('/api/platforms', { name: 'Other', type: 'other', instanceUrl: 'https://other.example', isDefault: true })
  t.equal(third.statusCode, 201)
  t.equal(third.json().isDefault, true)

  const { items } = (await ada.get('/api/platforms')).json()
  t.same(
    items.filter((p: { isDefault: boolean }) => p.isDefault).map((p: { id: number }) => p.id),
    [third.json().id],
    'exactly one default, the newest one asked for',
  )
})

t.test('a bad platform body is refused with VALIDATION_FAILED naming the field', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  const good = { name: 'Mine', type: 'pixelfed', instanceUrl: 'https://pixelfed.social' }
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['unknown type', { ...good, type: 'friendica' }, /type/],
    ['ftp URL', { ...good, instanceUrl: 'ftp://pixelfed.social' }, /instanceUrl/],
    ['javascript URL', { ...good, instanceUrl: 'javascript:alert(1)' }, /instanceUrl/],
    ['not a URL', { ...good, instanceUrl: 'pixelfed.social' }, /instanceUrl/],
    ['missing name', { type: good.type, instanceUrl: good.instanceUrl }, /name/],
    ['empty name', { ...good, name: '' }, /name/],
    ['unknown field', { ...good, secret: 'x' }, /secret/],
    ['name of the wrong type', { ...good, name: 42 }, /name/],
    ['isDefault of the wrong type', { ...good, isDefault: 'yes' }, /isDefault/],
  ]
  for (const [what, body, field] of cases) {
    const res = await ada.post('/api/platforms', body)
    t.equal(res.statusCode, 400, what)
    t.equal(res.json().error.code, 'VALIDATION_FAILED', what)
    t.match(res.json().error.message, field, `${what}: the message names the field`)
  }
  t.same((await ada.get('/api/platforms')).json().items, [], 'nothing was created')
})

t.test('a connection is deleted; another user’s or an unknown one is not found', async (t) => {
  const app = await build(t)
  const { platformIds: adas } = await app.user('ada', { platforms: ['Pixelfed', 'Mastodon'] })
  const { platformIds: bobs } = await app.user('bob', { platforms: ['Bobs'] })
  const ada = await app.client().signIn('ada')
  const bob = await app.client().signIn('bob')

  const res = await ada.delete(`/api/platforms/${adas[1]}`)
  t.equal(res.statusCode, 204)
  t.equal(res.body, '')
  t.same(
    (await ada.get('/api/platforms')).json().items.map((p: { id: number }) => p.id),
    [adas[0]],
  )

  const foreign = await ada.delete(`/api/platforms/${bobs[0]}`)
  t.equal(foreign.statusCode, 404)
  t.equal(foreign.json().error.code, 'PLATFORM_NOT_FOUND')
  t.equal((await bob.get('/api/platforms')).json().items.length, 1, 'bob still has his connection')

  const unknown = await ada.delete('/api/platforms/999999')
  t.equal(unknown.statusCode, 404)
  t.equal(unknown.json().error.code, 'PLATFORM_NOT_FOUND')

  const again = await ada.delete(`/api/platforms/${adas[1]}`)
  t.equal(again.statusCode, 404, 'a deleted connection is gone')
})

t.test('deleting the active platform leaves the session on none and tells its tabs', async (t) => {
  const app = await build(t)
  const { platformIds } = await app.user('ada', { platforms: ['Pixelfed', 'Mastodon'] })
  const ada = await app.client().signIn('ada')
  const before = (await ada.get('/api/session_state')).json()
  t.equal(before.platform.id, platformIds[0])
  const tabs = await twoTabs(app, ada)

  const res = await ada.delete(`/api/platforms/${platformIds[0]}`, undefined, { 'x-tab-id': 'tab-7' })
  t.equal(res.statusCode, 204)
  for (const tab of tabs) {
    const frame = await tab.type('platform.switched')
    t.match(frame, { platform: null, previousPlatform: { id: platformIds[0] }, version: before.version + 1, byTabId: 'tab-7' }, 'an open tab hears it is on no platform now')
  }

  const after = (await ada.get('/api/session_state')).json()
  t.equal(after.platform, null)
  t.equal(after.version, before.version + 1)

  const events = await switches(app, ada.sessionId!)
  t.equal(events.length, 1)
  t.match(events[0], {
    type: 'platform.switched',
    platform: null,
    previousPlatform: { id: platformIds[0], name: 'Pixelfed' },
    version: after.version,
    byTabId: 'tab-7',
  })
  t.type(events[0]!.seq, 'number')
  t.equal(after.seq, events[0]!.seq, 'session_state reports the seq of the event')
})

t.test('deleting a platform no session has active publishes nothing', async (t) => {
  const app = await build(t)
  const { platformIds } = await app.user('ada', { platforms: ['Pixelfed', 'Mastodon'] })
  const ada = await app.client().signIn('ada')
  const before = (await ada.get('/api/session_state')).json()
  t.equal((await ada.delete(`/api/platforms/${platformIds[1]}`)).statusCode, 204)
  const after = (await ada.get('/api/session_state')).json()
  t.equal(after.platform.id, platformIds[0])
  t.equal(after.version, before.version)
  t.same(await switches(app, ada.sessionId!), [])
})

t.test('switching the platform answers the new state and every tab hears of it', async (t) => {
  const app = await build(t)
  const { platformIds } = await app.user('ada', { platforms: ['Pixelfed', 'Mastodon'] })
  const ada = await app.client().signIn('ada')
  const before = (await ada.get('/api/session_state')).json()
  const tabs = await twoTabs(app, ada)

  const res = await ada.post(`/api/switch_platform/${platformIds[1]}`, { expectedVersion: before.version }, { 'x-tab-id': 'tab-A' })
  t.equal(res.statusCode, 200)
  const body = res.json()
  for (const [i, tab] of tabs.entries()) {
    const frame = await tab.type('platform.switched')
    t.match(frame, { platform: { id: platformIds[1], name: 'Mastodon' }, version: body.version, byTabId: 'tab-A' }, `tab ${'AB'[i]} hears of the switch`)
  }
  t.same(Object.keys(body).sort(), ['message', 'platform', 'version'])
  t.same(body.platform, { id: platformIds[1], name: 'Mastodon', type: 'mastodon', instanceUrl: 'https://mastodon.example', isDefault: false })
  t.equal(body.version, before.version + 1)
  t.type(body.message, 'string')
  t.ok(body.message.length > 0)

  const state = (await ada.get('/api/session_state')).json()
  t.equal(state.platform.id, platformIds[1])
  t.equal(state.version, body.version)

  const events = await switches(app, ada.sessionId!)
  t.equal(events.length, 1)
  t.match(events[0], {
    type: 'platform.switched',
    platform: { id: platformIds[1], name: 'Mastodon' },
    previousPlatform: { id: platformIds[0], name: 'Pixelfed' },
    version: body.version,
    byTabId: 'tab-A',
  })
  t.equal(state.seq, events[0]!.seq)

  const audit = await app.ctx.database.sql`select data from audit_events where type = 'platform.switched' and session_id = ${ada.sessionId!}`
  t.equal(audit.length, 1, 'the switch is in the audit log')
})

t.test('a switch without X-Tab-Id names no tab', async (t) => {
  const app = await build(t)
  const { platformIds } = await app.user('ada', { platforms: ['Pixelfed', 'Mastodon'] })
  const ada = await app.client().signIn('ada')
  t.equal((await ada.post(`/api/switch_platform/${platformIds[1]}`)).statusCode, 200)
  const [event] = await switches(app, ada.sessionId!)
  t.equal(event?.byTabId, null)
})

t.test('switching to the platform already active answers 200 and publishes nothing', async (t) => {
  const app = await build(t)
  const { platformIds } = await app.user('ada', { platforms: ['Pixelfed', 'Mastodon'] })
  const ada = await app.client().signIn('ada')
  const first = await ada.post(`/api/switch_platform/${platformIds[1]}`)
  t.equal(first.statusCode, 200)
  const logBefore = await streamOf(app, ada.sessionId!)

  const again = await ada.post(`/api/switch_platform/${platformIds[1]}`, { expectedVersion: first.json().version })
  t.equal(again.statusCode, 200)
  t.equal(again.json().version, first.json().version, 'the version does not move')
  t.equal(again.json().platform.id, platformIds[1])
  t.same(await streamOf(app, ada.sessionId!), logBefore, 'nothing new in the event log')
  t.equal((await ada.get('/api/session_state')).json().version, first.json().version)
})

t.test('switching to another user’s platform is PLATFORM_NOT_FOUND', async (t) => {
  const app = await build(t)
  const { platformIds: adas } = await app.user('ada', { platforms: ['Pixelfed'] })
  const { platformIds: bobs } = await app.user('bob', { platforms: ['Bobs'] })
  const ada = await app.client().signIn('ada')
  for (const id of [bobs[0], 999999]) {
    const res = await ada.post(`/api/switch_platform/${id}`)
    t.equal(res.statusCode, 404)
    t.equal(res.json().error.code, 'PLATFORM_NOT_FOUND')
  }
  t.equal((await ada.get('/api/session_state')).json().platform.id, adas[0], 'the session kept its platform')
  t.same(await switches(app, ada.sessionId!), [])
})

t.test('switching to a connection that is switched off is PLATFORM_INACTIVE', async (t) => {
  const app = await build(t)
  const { platformIds } = await app.user('ada', { platforms: ['Pixelfed', 'Mastodon'] })
  await app.ctx.database.sql`update platforms set active = false where id = ${platformIds[1]!}`
  const ada = await app.client().signIn('ada')
  const res = await ada.post(`/api/switch_platform/${platformIds[1]}`)
  t.equal(res.statusCode, 400)
  t.equal(res.json().error.code, 'PLATFORM_INACTIVE')
  t.equal((await ada.get('/api/session_state')).json().platform.id, platformIds[0])
  t.same(await switches(app, ada.sessionId!), [])
})

t.test('a switch with a stale expectedVersion is VERSION_CONFLICT with the current state', async (t) => {
  const app = await build(t)
  const { platformIds } = await app.user('ada', { platforms: ['Pixelfed', 'Mastodon', 'Other'] })
  const ada = await app.client().signIn('ada')
  const initial = (await ada.get('/api/session_state')).json().version
  const won = await ada.post(`/api/switch_platform/${platformIds[1]}`, { expectedVersion: initial })
  t.equal(won.statusCode, 200)

  const stale = await ada.post(`/api/switch_platform/${platformIds[2]}`, { expectedVersion: initial })
  t.equal(stale.statusCode, 409)
  const { error } = stale.json()
  t.equal(error.code, 'VERSION_CONFLICT')
  t.type(error.message, 'string')
  t.same(error.current, {
    platform: { id: platformIds[1], name: 'Mastodon', type: 'mastodon', instanceUrl: 'https://mastodon.example', isDefault: false },
    version: initial + 1,
  })
  const state = (await ada.get('/api/session_state')).json()
  t.equal(state.platform.id, platformIds[1], 'the loser changed nothing')
  t.equal(state.version, initial + 1)
  t.equal((await switches(app, ada.sessionId!)).length, 1)
})

t.test('a switch without its CSRF token is refused', async (t) => {
  const app = await build(t)
  const { platformIds } = await app.user('ada', { platforms: ['Pixelfed', 'Mastodon'] })
  const ada = await app.client().signIn('ada')
  const token = ada.csrf
  ada.csrf = undefined
  const missing = await ada.post(`/api/switch_platform/${platformIds[1]}`)
  t.equal(missing.statusCode, 403)
  t.equal(missing.json().error.code, 'CSRF_INVALID')
  const wrong = await ada.post(`/api/switch_platform/${platformIds[1]}`, undefined, { 'x-csrf-token': `${token}x` })
  t.equal(wrong.statusCode, 403)
  t.equal(wrong.json().error.code, 'CSRF_INVALID')
  const create = await ada.post('/api/platforms', { name: 'X', type: 'other', instanceUrl: 'https://x.example' })
  t.equal(create.statusCode, 403, 'creating needs the token too')
  const del = await ada.delete(`/api/platforms/${platformIds[1]}`)
  t.equal(del.statusCode, 403, 'deleting needs the token too')
  t.equal((await ada.get('/api/session_state')).json().platform.id, platformIds[0])
  t.equal((await ada.get('/api/platforms')).json().items.length, 2)
})

t.test('platform routes without a session cookie are UNAUTHENTICATED', async (t) => {
  const app = await build(t)
  const { platformIds } = await app.user('ada', { platforms: ['Pixelfed', 'Mastodon'] })
  const anon = app.client()
  const calls = [
    anon.get('/api/platforms'),
    anon.post('/api/platforms', { name: 'X', type: 'other', instanceUrl: 'https://x.example' }),
    anon.delete(`/api/platforms/${platformIds[1]}`),
    anon.post(`/api/switch_platform/${platformIds[1]}`),
  ]
  for (const res of await Promise.all(calls)) {
    t.equal(res.statusCode, 401)
    t.equal(res.json().error.code, 'UNAUTHENTICATED')
  }
})

t.test('20 concurrent switches of one session with one expectedVersion: one winner, 19 conflicts', async (t) => {
  const app = await build(t)
  const names = Array.from({ length: 21 }, (_, i) => `P${i}`)
  const { platformIds } = await app.user('ada', { platforms: names })
  const ada = await app.client().signIn('ada')
  const initial = (await ada.get('/api/session_state')).json()
  t.equal(initial.platform.id, platformIds[0])
  const targets = platformIds.slice(1)

  const results = await Promise.all(targets.map((id) => ada.post(`/api/switch_platform/${id}`, { expectedVersion: initial.version })))

  const winners = results.filter((r) => r.statusCode === 200)
  const losers = results.filter((r) => r.statusCode !== 200)
  t.equal(winners.length, 1, 'exactly one switch wins')
  t.equal(losers.length, 19)
  t.ok(
    losers.every((r) => r.statusCode === 409 && r.json().error.code === 'VERSION_CONFLICT'),
    'every loser is told VERSION_CONFLICT',
  )
  const winner = winners[0]!.json()
  t.equal(winner.version, initial.version + 1)
  for (const r of losers) t.same(r.json().error.current, { platform: winner.platform, version: winner.version }, 'losers see the winner')

  const state = (await ada.get('/api/session_state')).json()
  t.equal(state.platform.id, winner.platform.id, 'the session ends on the winner’s platform')
  t.equal(state.version, initial.version + 1)
  const events = await switches(app, ada.sessionId!)
  t.equal(events.length, 1, 'exactly one platform.switched')
  t.match(events[0], { platform: { id: winner.platform.id }, version: winner.version })
})

t.test('20 concurrent switches without expectedVersion all apply in order and events never step back', async (t) => {
  const app = await build(t)
  const names = Array.from({ length: 21 }, (_, i) => `P${i}`)
  const { platformIds } = await app.user('ada', { platforms: names })
  const ada = await app.client().signIn('ada')
  const initial = (await ada.get('/api/session_state')).json()

  const results = await Promise.all(platformIds.slice(1).map((id) => ada.post(`/api/switch_platform/${id}`)))

  t.ok(
    results.every((r) => r.statusCode === 200),
    'every switch succeeds',
  )
  const bodies = results.map((r) => r.json() as { platform: { id: number }; version: number })
  const versions = bodies.map((b) => b.version).sort((a, b) => a - b)
  t.same(
    versions,
    Array.from({ length: 20 }, (_, i) => initial.version + 1 + i),
    'each switch got its own version',
  )
  const last = bodies.find((b) => b.version === initial.version + 20)!

  const state = (await ada.get('/api/session_state')).json()
  t.equal(state.version, last.version)
  t.equal(state.platform.id, last.platform.id, 'the session is on the platform of the highest version')

  const events = await switches(app, ada.sessionId!)
  t.ok(events.length >= 1)
  const published = events.map((e) => e.version!)
  t.ok(
    published.every((v, i) => i === 0 || v > published[i - 1]!),
    `versions in the log only increase: ${published.join(',')}`,
  )
  t.match(events.at(-1), { platform: { id: last.platform.id }, version: last.version }, 'the last event names the final state')
})
