// `npm run config:doc`: writes what is generated from src/config.ts's variable list: the
// configuration table in README.md (between the config markers), .env.example, and the
// settings compose.yaml passes to the Tessera containers (between `# config:start` and
// `# config:end`). `npm run config:doc -- --check`: exits 1 and says what differs instead.
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { between, renderComposeEnvironment, renderEnvExample, withBlock } from './config-env.js'
import { describeDifferences, renderConfigTable, withTable } from './config-table.js'

const path = (name: string) => fileURLToPath(new URL(`../${name}`, import.meta.url))
const read = (name: string) => readFileSync(path(name), 'utf8')

const readme = read('README.md')
const table = renderConfigTable()
const envExample = renderEnvExample()
const compose = read('compose.yaml')
const composeBlock = renderComposeEnvironment()

if (process.argv.includes('--check')) {
  const problems: string[] = []
  const differences = describeDifferences(readme, table)
  if (differences.length > 0) problems.push(`README.md's configuration table:\n${differences.map((d) => `  ${d}`).join('\n')}`)
  let example = ''
  try {
    example = read('.env.example')
  } catch {}
  if (example !== envExample) problems.push('.env.example differs from what src/config.ts gives')
  if (between(compose) !== composeBlock) problems.push("compose.yaml's settings between # config:start and # config:end differ from what src/config.ts gives")
  if (problems.length > 0) {
    console.error(`Out of date with src/config.ts:\n${problems.join('\n')}`)
    console.error('Run `npm run config:doc` to regenerate them.')
    process.exit(1)
  }
  console.log('README.md, .env.example and compose.yaml match src/config.ts.')
} else {
  const written: string[] = []
  const write = (name: string, before: string, after: string) => {
    if (after === before) return
    writeFileSync(path(name), after)
    written.push(name)
  }
  write('README.md', readme, withTable(readme, table))
  let example = ''
  try {
    example = read('.env.example')
  } catch {}
  write('.env.example', example, envExample)
  write('compose.yaml', compose, withBlock(compose, composeBlock))
  console.log(written.length === 0 ? 'README.md, .env.example and compose.yaml are up to date.' : `Written: ${written.join(', ')} (${table.split('\n').length - 2} variables).`)
}
