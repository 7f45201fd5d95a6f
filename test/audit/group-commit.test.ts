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
