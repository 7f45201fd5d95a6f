// Audit events recorded at the same moment share one insert (group commit), and each
// caller hears back only once its events are committed, in the order the calls were made.
// Rows of one INSERT share the transaction id PostgreSQL stamps on them (xmin), so the
// number of distinct xmin values is the number of statements that wrote them.
import t from 'tap'
import { build } from '../helpers/app.js'

t.test('events recorded while an insert is held go together in the next one, in call order', async (t) => {
  const app = await build(t)
  const { audit } = app.app
  const { sql } = app.resources.database
  const { holder, first } = await holdFirstInsert(t, app)
  let committed = 0
  const rest = Array.from({ length: 40 }, (_, i) =>
    audit.record({ type: 'test.grouped', data: { i } }, { type: 'test.grouped-pair', data: { i } }).then(() => committed++),
  )
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(committed, 0, 'nobody hears back before their events are committed')
  await holder`commit`
  await Promise.all([first, ...rest])
  const rows = await sql<{ type: string; data: { i?: number }; tx: string }[]>`
    select type, data, xmin::text as tx from audit_events where type like 'test.%' order by id`
  t.equal(rows.length, 81)
  t.equal(rows[0]!.type, 'test.first')
  t.equal(new Set(rows.slice(1).map((r) => r.tx)).size, 1, 'the 40 calls held behind the first went in one insert')
  t.not(rows[1]!.tx, rows[0]!.tx, 'apart from the insert that was held')
  const order = rows.slice(1).map((r) => `${r.type}:${r.data.i}`)
  const expected = Array.from({ length: 40 }, (_, i) => [`test.grouped:${i}`, `test.grouped-pair:${i}`]).flat()
  t.same(order, expected, 'in the order of the calls, each call’s events together')
})

t.test('an event that fails its shared insert fails only its own caller', async (t) => {
  const app = await build(t)
  const { audit } = app.app
  const { sql } = app.resources.database
  const { holder, first } = await holdFirstInsert(t, app)
  // Not JSON: jsonb refuses it, so the statement carrying it fails.
  const bad = audit.record({ type: 'test.bad', data: { text: 'a\u0000b' } })
  const alongside = audit.record({ type: 'test.alongside' })
  await holder`commit`
  await first
  await t.rejects(bad, 'its caller hears the error')
  await t.resolves(alongside, 'the event that shared its insert is written on its own')
  await audit.record({ type: 'test.after' })
  const types = (await sql<{ type: string }[]>`select type from audit_events where type like 'test.%' order by id`).map((r) => r.type)
  t.same(types, ['test.first', 'test.alongside', 'test.after'])
})

t.test('every kind of event survives the grouped insert as it was given', async (t) => {
  // The grouped insert sends each column as one array (a prepared statement for any number
  // of rows): what the arrays carry must come back exactly.
  const app = await build(t)
  const { audit } = app.app
  const { sql } = app.resources.database
  const { id: userId } = await app.user('ada')
  const sessionId = (await app.client().signIn('ada')).sessionId!
  const data = { quote: 'say "hi"', backslash: 'C:\\temp\\', braces: '{a,b}', comma: 'a, b', unicode: 'żółw 🐢', nested: { list: [1, null, 'x'], empty: {} } }
  await Promise.all([
    audit.record({ type: 'test.full', actorUserId: userId, userId, sessionId, data }),
    audit.record({ type: 'test.bare' }),
    audit.record({ type: 'test.null "type"', userId, data: {} }),
  ])
  const rows = await sql<{ type: string; actor_user_id: number | null; user_id: number | null; session_id: string | null; data: unknown }[]>`
    select type, actor_user_id, user_id, session_id, data from audit_events where type like 'test.%' order by id`
  t.same(rows, [
    { type: 'test.full', actor_user_id: userId, user_id: userId, session_id: sessionId, data },
    { type: 'test.bare', actor_user_id: null, user_id: null, session_id: null, data: {} },
    { type: 'test.null "type"', actor_user_id: null, user_id: userId, session_id: null, data: {} },
  ])
})

/** Records `test.first` while another connection keeps audit_events locked against writers: its insert is held until `holder` commits. */
async function holdFirstInsert(t: { teardown(fn: () => unknown): void }, app: Awaited<ReturnType<typeof build>>) {
  const holder = await app.resources.database.sql.reserve()
  t.teardown(() => holder.release())
  await holder`begin`
  await holder`lock table audit_events in exclusive mode`
  const first = app.app.audit.record({ type: 'test.first' })
  await new Promise((resolve) => setTimeout(resolve, 50))
  return { holder, first }
}
