// `npm run seed:demo`: the demo accounts of src/demo/accounts.ts, printed with their
// passwords. Safe to run again: the printed password of an account that already existed is
// only right if nobody changed it.
import { ConfigError, environment, loadConfig } from '../src/config.js'
import { accountTable, seedDemoAccounts } from '../src/demo/accounts.js'
import { DependencyError } from '../src/infra/dependency-error.js'
import { openResources } from '../src/resources.js'

async function main() {
  const config = loadConfig(environment())
  if (config.production && !process.argv.includes('--force')) {
    throw new ConfigError('NODE_ENV=production: refusing to create demo accounts with known passwords (pass --force to do it anyway)')
  }
  const resources = await openResources(config)
  try {
    if (resources.bootstrap) {
      console.log(`First admin created: username "${resources.bootstrap.username}", password "${resources.bootstrap.password}" (shown only this once)`)
    }
    const rows = await seedDemoAccounts(resources.database)
    console.log(accountTable(rows))
    if (rows.some((r) => r.status === 'exists')) console.log('\nAccounts marked "exists" were left as they were: their password is the one shown unless someone changed it.')
    console.log(`\nSign in at ${config.publicUrl} (API docs at ${new URL('/docs', config.publicUrl)}).`)
  } finally {
    await resources.close()
  }
}

main().catch((err) => {
  if (err instanceof ConfigError || err instanceof DependencyError) console.error(`seed:demo: ${err.message}`)
  else console.error('seed:demo: failed:', err)
  process.exit(1)
})
