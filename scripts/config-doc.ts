// `npm run config:doc`: writes the configuration table into README.md between the
// config markers. `npm run config:doc -- --check`: exits 1 and says what differs instead.
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describeDifferences, renderConfigTable, withTable } from './config-table.js'

const readmePath = fileURLToPath(new URL('../README.md', import.meta.url))
const readme = readFileSync(readmePath, 'utf8')
const table = renderConfigTable()

if (process.argv.includes('--check')) {
  const differences = describeDifferences(readme, table)
  if (differences.length > 0) {
    console.error(`README.md's configuration table is out of date with src/config.ts:\n${differences.map((d) => `  ${d}`).join('\n')}`)
    console.error('Run `npm run config:doc` to regenerate it.')
    process.exit(1)
  }
  console.log('README.md configuration table matches src/config.ts.')
} else {
  const updated = withTable(readme, table)
  if (updated === readme) {
    console.log('README.md configuration table is up to date.')
  } else {
    writeFileSync(readmePath, updated)
    console.log(`README.md configuration table written (${table.split('\n').length - 2} variables).`)
  }
}
