// Locks (http.md, "Locks"; realtime.md lock.acquired / locks.released; quality.md R4, R7):
// one owner session per resource, taken atomically, announced to every tab.
import t from 'tap'
import { build, signedIn, type TestApp } from '../helpers/app.js'
import { listen, openTab } from '../helpers/ws.js'

async function auditOf(app: TestApp, type: string, sessionId: string) {
  return app.ctx.database.sql`select user_id, session_id, data from audit_events where type = ${type} and session_id = ${sessionId} order by id`
}

const lockRows = (app: TestApp) => app.ctx.database.sql`select resource, session_id, user_id from locks order by resource`

t.test('acquiring a free resource answers 201, again 200 with the same lock, and another session 409 with the owner', async (t) => {
  const app = await build(t)
  const [ada, bob] = await signedIn(app, 'ada', 'bob')
  const adaId = (await app.ctx.database.sql`select id from users where username = 'ada'`)[0]!.id as number

  const first = await ada!.post('/api/locks', { resource: 'doc:42' })
  t.equal(first.statusCode, 201)
  const lock = first.json()
  t.same(lock, { resource: 'doc:42', owner: { sessionId: ada!.sessionId, userId: adaId, username: 'ada' }, acquiredAt: lock.acquiredAt })
  t.ok(Math.abs(Date.parse(lock.acquiredAt) - Date.now()) < 10_000, 'acquiredAt is now')

  const again = await ada!.post('/api/locks', { resource: 'doc:42' })
  t.equal(again.statusCode, 200, 're-acquiring one’s own lock is 200')
  t.same(again.json(), lock, 'and changes nothing')

  const held = await bob!.post('/api/locks', { resource: 'doc:42' })
  t.equal(held.statusCode, 409)
  t.match(held.json(), { error: { code: 'LOCK_HELD', message: /ada/, owner: { sessionId: ada!.sessionId, userId: adaId, username: 'ada' } } })

  const adaPhone = await app.client().signIn('ada')
  const sameUser = await adaPhone.post('/api/locks', { resource: 'doc:42' })
  t.equal(sameUser.statusCode, 409, 'a lock belongs to a session, not to the user')

  const audit = await auditOf(app, 'lock.acquired', ada!.sessionId!)
  t.same(
    audit.map((r) => ({ userId: r.user_id, data: r.data })),
    [{ userId: adaId, data: { resource: 'doc:42' } }],
    'one audit event, for the new acquisition only',
  )
  t.same(await lockRows(app), [{ resource: 'doc:42', session_id: ada!.sessionId, user_id: adaId }])
})

t.test('a bad lock request is refused with VALIDATION_FAILED naming the field', async (t) => {
  const app = await build(t)
  const [ada] = await signedIn(app, 'ada')
  const cases: [string, Record<string, unknown> | undefined, RegExp][] = [
    ['empty resource', { resource: '' }, /body\.resource/],
    ['201 characters', { resource: 'x'.repeat(201) }, /body\.resource/],
    ['missing resource', {}, /body\.resource is required/],
    ['no body', undefined, /body\.resource is required/],
    ['a number', { resource: 42 }, /body\.resource/],
    ['an unknown field', { resource: 'a', owner: 'me' }, /body\.owner is not an accepted field/],
  ]
  for (const [name, body, message] of cases) {
    const res = await ada!.post('/api/locks', body)
    t.equal(res.statusCode, 400, name)
    t.match(res.json(), { error: { code: 'VALIDATION_FAILED', message } }, name)
  }
  t.equal((await ada!.post('/api/locks', { resource: 'x'.repeat(200) })).statusCode, 201, '200 characters are fine')
  t.equal((await ada!.delete(`/api/locks/${'y'.repeat(201)}`)).statusCode, 400, 'a 201-character path is refused too')
  const query = await ada!.get(`/api/locks?prefix=${'z'.repeat(201)}`)
  t.equal(query.statusCode, 400)
  t.match(query.json(), { error: { code: 'VALIDATION_FAILED', message: /querystring\.prefix/ } })
  t.equal((await ada!.get('/api/locks?owner=me')).statusCode, 400, 'unknown query fields are refused')
  t.same((await lockRows(app)).length, 1)
})

t.test('lock routes need a session, and state-changing ones its CSRF token', async (t) => {
  const app = await build(t)
  const [ada] = await signedIn(app, 'ada')
  t.equal((await ada!.post('/api/locks', { resource: 'doc' })).statusCode, 201)

  const anonymous = app.client()
  for (const res of [await anonymous.post('/api/locks', { resource: 'doc' }), await anonymous.delete('/api/locks/doc'), await anonymous.get('/api/locks')]) {
    t.equal(res.statusCode, 401)
    t.match(res.json(), { error: { code: 'UNAUTHENTICATED' } })
  }
  for (const res of [
    await ada!.post('/api/locks', { resource: 'other' }, { 'x-csrf-token': '' }),
    await ada!.delete('/api/locks/doc', undefined, { 'x-csrf-token': 'wrong' }),
  ]) {
    t.equal(res.statusCode, 403)
    t.match(res.json(), { error: { code: 'CSRF_INVALID' } })
  }
  t.same(
    (await lockRows(app)).map((r) => r.resource),
    ['doc'],
    'nothing changed',
  )
})

t.test('releasing: 204 for the owner, 403 for another session, 404 for a free resource; names are URL-encoded', async (t) => {
  const app = await build(t)
  const [ada, bob] = await signedIn(app, 'ada', 'bob')
  const odd = 'folder/sub dir/100%_done?#😀'
  t.equal((await ada!.post('/api/locks', { resource: odd })).statusCode, 201)
  const longest = '😀'.repeat(200)
  t.equal((await ada!.post('/api/locks', { resource: longest })).statusCode, 201, '200 astral characters fit')

  const notMine = await bob!.delete(`/api/locks/${encodeURIComponent(odd)}`)
  t.equal(notMine.statusCode, 403)
  t.match(notMine.json(), { error: { code: 'NOT_LOCK_OWNER' } })

  const missing = await ada!.delete('/api/locks/never-locked')
  t.equal(missing.statusCode, 404)
  t.match(missing.json(), { error: { code: 'LOCK_NOT_FOUND' } })

  const released = await ada!.delete(`/api/locks/${encodeURIComponent(odd)}`)
  t.equal(released.statusCode, 204)
  t.equal(released.body, '')
  t.equal((await ada!.delete(`/api/locks/${encodeURIComponent(longest)}`)).statusCode, 204)
  t.equal((await ada!.delete(`/api/locks/${encodeURIComponent(odd)}`)).statusCode, 404, 'a second release finds nothing')
  t.same(await lockRows(app), [])

  t.equal((await bob!.post('/api/locks', { resource: odd })).statusCode, 201, 'a released resource is free for others')
  const audit = await auditOf(app, 'lock.released', ada!.sessionId!)
  t.same(
    audit.map((r) => r.data),
    [{ resource: odd }, { resource: longest }],
  )
})

t.test('the list is ordered by resource and filters by a literal prefix', async (t) => {
  const app = await build(t)
  const [ada, bob] = await signedIn(app, 'ada', 'bob')
  for (const resource of ['doc-b', 'doc-a', 'img-1', 'a%b', 'a_c', 'axb', 'abc']) {
    const client = resource.startsWith('img') ? bob! : ada!
    t.equal((await client.post('/api/locks', { resource })).statusCode, 201, resource)
  }
  const all = await ada!.get('/api/locks')
  t.equal(all.statusCode, 200)
  const { items } = all.json()
  t.equal(items.length, 7)
  t.same(
    items.map((l: { resource: string }) => l.resource),
    ['a%b', 'a_c', 'abc', 'axb', 'doc-a', 'doc-b', 'img-1'],
    'in code-point order, whatever the database collation',
  )
  t.match(items.find((l: { resource: string }) => l.resource === 'img-1'), { owner: { username: 'bob', sessionId: bob!.sessionId }, acquiredAt: String })

  const names = async (prefix: string) =>
    ((await ada!.get(`/api/locks?prefix=${encodeURIComponent(prefix)}`)).json().items as { resource: string }[]).map((l) => l.resource)
  t.same(await names('doc'), ['doc-a', 'doc-b'])
  t.same(await names('a%'), ['a%b'], '% is literal')
  t.same(await names('a_'), ['a_c'], '_ is literal')
  t.same(await names('nothing'), [])
  t.same((await names('')).length, 7, 'an empty prefix lists everything')
})

t.test('lock.acquired and locks.released reach the tabs of another user', async (t) => {
  const app = await build(t)
  const [ada, bob] = await signedIn(app, 'ada', 'bob')
  const address = await listen(app)
  const { tab } = await openTab(address, bob!.sid!, { tabId: 'bob-1' })

  const lock = (await ada!.post('/api/locks', { resource: 'doc:7' })).json()
  const acquired = await tab.type('lock.acquired')
  t.same(acquired, { type: 'lock.acquired', resource: 'doc:7', owner: lock.owner, at: acquired.at })
  t.type(acquired.seq, 'undefined', 'a broadcast is not part of the session log')

  t.equal((await ada!.post('/api/locks', { resource: 'doc:7' })).statusCode, 200)
  t.equal((await ada!.delete('/api/locks/doc%3A7')).statusCode, 204)
  const released = await tab.type('locks.released')
  t.same(released, { type: 'locks.released', resources: ['doc:7'], sessionId: ada!.sessionId, reason: 'released', at: released.at })
  t.same(
    tab.messages.filter((m) => m.type.startsWith('lock')).map((m) => m.type),
    ['lock.acquired', 'locks.released'],
    're-acquiring one’s own lock announces nothing',
  )
})

t.test('a lock whose owner session ended does not block: the next taker gets it', async (t) => {
  const app = await build(t)
  const [ada, bob] = await signedIn(app, 'ada', 'bob')
  t.equal((await ada!.post('/api/locks', { resource: 'doc:1' })).statusCode, 201)
  t.equal((await ada!.post('/api/locks', { resource: 'doc:2' })).statusCode, 201)
  await app.ctx.sessions.end([ada!.sessionId!], 'logout')

  t.same((await bob!.get('/api/locks')).json().items, [], 'locks of an ended session are not listed')
  const notFound = await bob!.delete('/api/locks/doc%3A2')
  t.equal(notFound.statusCode, 404, 'nor can they be released by others: they are free')

  const taken = await bob!.post('/api/locks', { resource: 'doc:1' })
  t.equal(taken.statusCode, 201)
  t.match(taken.json(), { resource: 'doc:1', owner: { sessionId: bob!.sessionId, username: 'bob' } })
  t.same(
    (await bob!.get('/api/locks')).json().items.map((l: { resource: string }) => l.resource),
    ['doc:1'],
  )
})

t.test('a stale lock is taken over by exactly one of many concurrent takers', async (t) => {
  const app = await build(t, { LOGIN_RATE_LIMIT: '1000/min' })
  const [ada] = await signedIn(app, 'ada')
  t.equal((await ada!.post('/api/locks', { resource: 'shared' })).statusCode, 201)
  // Ended in PostgreSQL only, as if the session-ended job had not run yet: the lock row stays.
  await app.ctx.database.sql`update sessions set status = 'ended', ended_at = now(), end_reason = 'logout' where id = ${ada!.sessionId!}`
  t.equal((await lockRows(app)).length, 1)

  const takers = await signedIn(app, ...Array.from({ length: 20 }, (_, i) => `taker${i}`))
  const answers = await Promise.all(takers.map((c) => c.post('/api/locks', { resource: 'shared' })))
  const codes = answers.map((r) => r.statusCode).sort()
  t.same(codes, [201, ...Array<number>(19).fill(409)])
  const winner = answers.find((r) => r.statusCode === 201)!.json()
  for (const r of answers.filter((a) => a.statusCode === 409)) t.same(r.json().error.owner, winner.owner)
  const rows = await lockRows(app)
  t.same(
    rows.map((r) => r.session_id),
    [winner.owner.sessionId],
  )
})

t.test('releaseAllOf frees a session’s locks once, with one audit event, and its release is announced once', async (t) => {
  const app = await build(t)
  const [ada, bob] = await signedIn(app, 'ada', 'bob')
  const address = await listen(app)
  const { tab } = await openTab(address, bob!.sid!, { tabId: 'bob-1' })
  for (const resource of ['b', 'a', 'c']) t.equal((await ada!.post('/api/locks', { resource })).statusCode, 201)
  t.equal((await bob!.post('/api/locks', { resource: 'bobs' })).statusCode, 201)
  const sessionId = ada!.sessionId!

  t.same(await app.locks.releasesOf(sessionId), [], 'nothing released yet')
  const release = await app.locks.releaseAllOf(sessionId, 'logout')
  t.match(release, { id: Number, sessionId, resources: ['a', 'b', 'c'], reason: 'logout' })
  t.equal(await app.locks.releaseAllOf(sessionId, 'logout'), null, 'a second call releases nothing')
  t.same(
    (await lockRows(app)).map((r) => r.resource),
    ['bobs'],
    'other sessions keep theirs',
  )
  const audit = await auditOf(app, 'locks.released', sessionId)
  t.equal(audit.length, 1, 'one audit event')
  t.same(audit[0]!.data, { resources: ['a', 'b', 'c'], reason: 'logout' })
  t.type(audit[0]!.user_id, 'number')
  t.same(await app.locks.releasesOf(sessionId), [release], 'a retried job finds the release to announce')

  // Announced by three callers (a job, its retry, the cleanup): the tabs hear of it once.
  const told = await Promise.all([release!, release!, ...(await app.locks.releasesOf(sessionId))].map((r) => app.locks.announceRelease(r)))
  t.same(told.filter(Boolean).length, 1, 'one of them announced it')
  const released = await tab.next((m) => m.type === 'locks.released')
  t.same(released, { type: 'locks.released', resources: ['a', 'b', 'c'], sessionId, reason: 'logout', at: released.at })
  t.match(await app.locks.releaseAllOf(bob!.sessionId!, 'logout'), { resources: ['bobs'] })
  t.equal(await app.locks.releaseAllOf('00000000-0000-4000-8000-000000000000', 'logout'), null, 'an unknown session has none')
  await new Promise((r) => setTimeout(r, 300))
  t.equal(tab.messages.filter((m) => m.type === 'locks.released').length, 1, 'no second announcement arrived')
})

t.test('100 concurrent acquisitions of one resource from 100 sessions give exactly one owner (R7)', async (t) => {
  const app = await build(t, { LOGIN_RATE_LIMIT: '1000/min' })
  const clients = await signedIn(app, ...Array.from({ length: 100 }, (_, i) => `user${i}`))
  const answers = await Promise.all(clients.map((c) => c.post('/api/locks', { resource: 'the-one' })))
  const counts = new Map<number, number>()
  for (const r of answers) counts.set(r.statusCode, (counts.get(r.statusCode) ?? 0) + 1)
  t.same(Object.fromEntries(counts), { 201: 1, 409: 99 })
  const winner = answers.find((r) => r.statusCode === 201)!.json()
  t.ok(
    answers.filter((r) => r.statusCode === 409).every((r) => r.json().error.owner.sessionId === winner.owner.sessionId),
    'every loser is told the same owner',
  )
  const rows = await lockRows(app)
  t.equal(rows.length, 1)
  t.equal(rows[0]!.session_id, winner.owner.sessionId)
  const audits = await app.ctx.database.sql`select count(*)::int as n from audit_events where type = 'lock.acquired'`
  t.equal(audits[0]!.n, 1, 'one acquisition audited')
})
