// Sessions read by id at the same moment (every hello reads its session) share one query:
// lookups asked while a query is in flight go together in the next one, each still gets
// its own answer, and one bad id does not spoil the others.
import t from 'tap'
import { GroupRead } from '../../src/infra/group-read.js'
import { build } from '../helpers/app.js'

t.test('lookups asked while a query is held go in one query after it, each answered', async (t) => {
  const app = await build(t)
  const { sql } = app.resources.database
  const ids: string[] = []
  for (const name of ['ada', 'bob', 'cy']) {
    await app.user(name)
    ids.push((await app.client().signIn(name)).sessionId!)
  }
  const holder = await sql.reserve()
  t.teardown(() => holder.release())
  await holder`begin`
  await holder`lock table sessions in access exclusive mode`
  const queries: string[][] = []
  const reads = new GroupRead<string, string>(async (keys) => {
    queries.push(keys)
    const rows = await sql<{ id: string; status: string }[]>`select id, status from sessions where id = any(${keys}::uuid[])`
    return new Map(rows.map((r) => [r.id, r.status]))
  })
  const first = reads.get(ids[0]!)
  await new Promise((resolve) => setTimeout(resolve, 50))
  const absent = '00000000-0000-4000-8000-000000000000'
  const later = [reads.get(ids[1]!), reads.get(ids[2]!), reads.get(ids[1]!), reads.get(absent)]
  await holder`commit`
  t.same(await Promise.all([first, ...later]), ['active', 'active', 'active', 'active', null])
  t.same(queries, [[ids[0]], [ids[1], ids[2], absent]], 'the first query alone, then one for everything asked meanwhile, each id once')
})

t.test('the session store answers concurrent lookups by id, whatever their spelling', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  const id = ada.sessionId!
  const [exact, upper, absent, notAnId] = await Promise.all([
    app.ctx.store.findById(id),
    app.ctx.store.findById(id.toUpperCase()),
    app.ctx.store.findById('00000000-0000-4000-8000-000000000000'),
    app.ctx.store.findById('not-a-uuid'),
  ])
  t.equal(exact?.id, id)
  t.equal(upper?.id, id)
  t.equal(absent, null)
  t.equal(notAnId, null, 'an id that is not a UUID is no session, and does not fail the others')
})
