// The README's configuration table, rendered from src/config.ts's variable list, and the
// comparison that `npm run config:doc --check` and test/config/readme-table.test.ts report.
import { configVariables } from '../src/config.js'

export const START_MARKER = '<!-- config:start -->'
export const END_MARKER = '<!-- config:end -->'

interface Documented {
  env: string
  default: string | undefined
  meaning: string
}

const cell = (s: string) => s.replaceAll('|', '\\|').replaceAll('\n', ' ')

/** One Markdown table: variable | default | meaning, in the order of src/config.ts. */
export function renderConfigTable(variables: readonly Documented[] = configVariables): string {
  const rows = variables.map((v) => `| \`${v.env}\` | ${v.default === undefined ? 'unset' : `\`${cell(v.default)}\``} | ${cell(v.meaning)} |`)
  return ['| variable | default | meaning |', '| --- | --- | --- |', ...rows].join('\n')
}

/** The text between the markers (trimmed), or null when the markers are missing or out of order. */
export function tableInReadme(readme: string): string | null {
  const start = readme.indexOf(START_MARKER)
  const end = readme.indexOf(END_MARKER)
  if (start < 0 || end < start) return null
  return readme.slice(start + START_MARKER.length, end).trim()
}

/** The README with `table` between the markers; throws when the markers are missing. */
export function withTable(readme: string, table: string): string {
  const start = readme.indexOf(START_MARKER)
  const end = readme.indexOf(END_MARKER)
  if (start < 0 || end < start) throw new Error(`README.md needs the markers ${START_MARKER} and ${END_MARKER}, in that order`)
  return `${readme.slice(0, start + START_MARKER.length)}\n\n${table}\n\n${readme.slice(end)}`
}

const variableOf = (row: string) => /^\|\s*`([A-Z0-9_]+)`/.exec(row)?.[1]

/**
 * What differs between the README's table and the one src/config.ts gives, one line per
 * finding, naming the variable; empty when they agree.
 */
export function describeDifferences(readme: string, expected: string = renderConfigTable()): string[] {
  const actual = tableInReadme(readme)
  if (actual === null) return [`README.md has no ${START_MARKER} … ${END_MARKER} section`]
  if (actual === expected) return []
  const rowsOf = (table: string) => {
    const rows = new Map<string, string>()
    for (const line of table.split('\n')) {
      const name = variableOf(line.trim())
      if (name) rows.set(name, line.trim())
    }
    return rows
  }
  const have = rowsOf(actual)
  const want = rowsOf(expected)
  if (have.size === 0) return [`README.md's table has no rows; src/config.ts declares ${want.size} variables`]
  const out: string[] = []
  for (const [name, row] of want) {
    const old = have.get(name)
    if (old === undefined) out.push(`${name}: missing from README.md (src/config.ts: ${row})`)
    else if (old !== row) out.push(`${name}: README.md has\n    ${old}\n  src/config.ts gives\n    ${row}`)
  }
  for (const name of have.keys()) {
    if (!want.has(name)) out.push(`${name}: in README.md but not in src/config.ts`)
  }
  if (out.length === 0) {
    const order = (rows: Map<string, string>) => [...rows.keys()].join(',')
    out.push(order(have) === order(want) ? 'the table header or formatting differs' : 'the rows are in a different order than in src/config.ts')
  }
  return out
}
