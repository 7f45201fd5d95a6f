// POST /api/session/generate-uuid and /validate-uuid (http.md, "The caller's own session").
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { unusedSessionUuid } from '../../src/sessions/fresh-uuid.js'
import { build } from '../helpers/app.js'

const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

t.test('generate-uuid answers a fresh UUID v4 that no session uses', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  const seen = new Set<string>()
  for (let i = 0; i < 3; i++) {
    const res = await ada.post('/api/session/generate-uuid')
    t.equal(res.statusCode, 200)
    const { uuid } = res.json()
    t.match(uuid, V4)
    seen.add(uuid)
    const [row] = await app.ctx.database.sql`select count(*)::int as n from sessions where id = ${uuid}`
    t.equal(row!.n, 0, 'no session has it')
  }
  t.equal(seen.size, 3, 'each call gives a new one')
})

t.test('a generated UUID that a session already uses is never answered: the next one is', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  const taken = ada.sessionId!
  const fresh = randomUUID()
  // The generator's first value collides with ada's session, as a random one could.
  const values = [taken, fresh]
  const offered: string[] = []
  const next = () => {
    const v = values.shift() ?? randomUUID()
    offered.push(v)
    return v
  }
  const uuid = await unusedSessionUuid(app.ctx.database.db, next)
  t.same(offered, [taken, fresh], 'the occupied value was offered first, then one more')
  t.equal(uuid, fresh, 'the answer is the free one')
  t.not(uuid, taken, 'never the session id')
  const [row] = await app.ctx.database.sql`select count(*)::int as n from sessions where id = ${taken}`
  t.equal(row!.n, 1, 'the collision was real: a session has that id')
})

t.test('validate-uuid checks the v4 format strictly and says whether a session uses it', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  const other = await app.client().signIn('ada')
  const cases: [string, boolean, boolean][] = [
    [other.sessionId!, true, true],
    [other.sessionId!.toUpperCase(), true, true],
    ['3b241101-e2bb-4255-8caf-4136c566a962', true, false],
    ['c232ab00-9414-11ec-b3c8-9f6bdeced846', false, false], // a v1 UUID
    ['3b241101-e2bb-4255-7caf-4136c566a962', false, false], // v4 with a wrong variant
    ['3b241101e2bb42558caf4136c566a962', false, false],
    ['3b241101-e2bb-4255-8caf-4136c566a962 ', false, false],
    ['not-a-uuid', false, false],
    ['', false, false],
  ]
  for (const [uuid, validFormat, exists] of cases) {
    const res = await ada.post('/api/session/validate-uuid', { uuid })
    t.equal(res.statusCode, 200, JSON.stringify(uuid))
    t.same(res.json(), { uuid, validFormat, exists }, JSON.stringify(uuid))
  }
})

t.test('validate-uuid needs its body', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  for (const [body, field] of [
    [{}, /body\.uuid is required/],
    [{ uuid: 42 }, /body\.uuid/],
    [{ uuid: 'x', extra: true }, /body\.extra is not an accepted field/],
    [{ uuid: 'x'.repeat(101) }, /body\.uuid/],
  ] as const) {
    const res = await ada.post('/api/session/validate-uuid', body)
    t.equal(res.statusCode, 400, JSON.stringify(body))
    t.match(res.json(), { error: { code: 'VALIDATION_FAILED', message: field } })
  }
})
