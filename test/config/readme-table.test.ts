// The README's configuration table is generated from src/config.ts: this fails when
// someone changes one without the other (fix: `npm run config:doc`).
import { readFileSync } from 'node:fs'
import t from 'tap'
import { configVariables } from '../../src/config.js'
import { describeDifferences, END_MARKER, renderConfigTable, START_MARKER, tableInReadme, withTable } from '../../scripts/config-table.js'

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')

t.test('README.md lists every variable of src/config.ts, as src/config.ts declares it', async (t) => {
  const differences = describeDifferences(readme)
  t.same(differences, [], `README.md is out of date; run npm run config:doc:\n${differences.join('\n')}`)
  t.equal(tableInReadme(readme), renderConfigTable())
})

t.test('the table has one row per variable, in declaration order, with its default and meaning', async (t) => {
  const rows = renderConfigTable().split('\n').slice(2)
  t.equal(rows.length, configVariables.length)
  t.equal(rows[0], '| `ROLE` | `all` | `api`, `worker` or `all` |')
  const secret = configVariables.find((v) => v.env === 'SESSION_SECRET')!
  t.ok(rows.includes(`| \`SESSION_SECRET\` | unset | ${secret.meaning} |`), 'a variable without a default shows "unset"')
  t.same(
    rows.map((r) => /`([A-Z0-9_]+)`/.exec(r)?.[1]),
    configVariables.map((v) => v.env),
  )
})

t.test('a changed, missing or extra variable is named', async (t) => {
  const variables = configVariables.map((v) => ({ env: v.env, default: v.default, meaning: v.meaning }))
  const changed = variables.map((v) => (v.env === 'PORT' ? { ...v, default: '8080' } : v))
  t.match(describeDifferences(readme, renderConfigTable(changed)), [/^PORT: README\.md has\n.*`3000`.*\n.*\n.*`8080`/])
  const added = [...variables, { env: 'NEW_SETTING', default: '1', meaning: 'new' }]
  t.same(describeDifferences(readme, renderConfigTable(added)), ['NEW_SETTING: missing from README.md (src/config.ts: | `NEW_SETTING` | `1` | new |)'])
  const removed = variables.filter((v) => v.env !== 'LOG_LEVEL')
  t.same(describeDifferences(readme, renderConfigTable(removed)), ['LOG_LEVEL: in README.md but not in src/config.ts'])
  const reordered = [variables[1]!, variables[0]!, ...variables.slice(2)]
  t.same(describeDifferences(readme, renderConfigTable(reordered)), ['the rows are in a different order than in src/config.ts'])
  t.same(describeDifferences('# no markers here'), [`README.md has no ${START_MARKER} … ${END_MARKER} section`])
})

t.test('writing the table replaces only what is between the markers, and a | in a cell is escaped', async (t) => {
  const doc = `# T\n\nbefore\n${START_MARKER}\nold\n${END_MARKER}\nafter\n`
  const table = renderConfigTable([{ env: 'A', default: undefined, meaning: 'x | y' }])
  const written = withTable(doc, table)
  t.equal(written, `# T\n\nbefore\n${START_MARKER}\n\n| variable | default | meaning |\n| --- | --- | --- |\n| \`A\` | unset | x \\| y |\n\n${END_MARKER}\nafter\n`)
  t.equal(withTable(written, table), written, 'idempotent')
  t.same(describeDifferences(written, table), [])
  t.throws(() => withTable('no markers', table), /needs the markers/)
})
