// `npm run seed:demo`: demo accounts of every role, each with two or three platform
// connections, made through the app's own code. Safe to run again: existing accounts are
// left as they are (a user without platforms gets them), so the printed password of an
// account that already existed is only right if nobody changed it.
import { ConfigError, loadConfig, readDotEnv } from '../src/config.js'
import { createUser, findUserByUsername } from '../src/auth/users.js'
import type { Role } from '../src/auth/roles.js'
import { DependencyError } from '../src/infra/dependency-error.js'
import type { Pool } from '../src/infra/db.js'
import { openResources } from '../src/resources.js'

interface DemoPlatform {
  name: string
  type: 'pixelfed' | 'mastodon' | 'other'
  instanceUrl: string
}

const PLATFORMS: DemoPlatform[] = [
  { name: 'Pixelfed', type: 'pixelfed', instanceUrl: 'https://pixelfed.social' },
  { name: 'Mastodon', type: 'mastodon', instanceUrl: 'https://mastodon.social' },
  { name: 'Photo archive', type: 'other', instanceUrl: 'https://photos.example.org' },
]

const DEMO_USERS: { username: string; role: Role }[] = [
  { username: 'ada', role: 'admin' },
  { username: 'grace', role: 'admin' },
  { username: 'linus', role: 'reviewer' },
  { username: 'margaret', role: 'reviewer' },
  { username: 'ken', role: 'reviewer' },
  { username: 'alan', role: 'user' },
  { username: 'barbara', role: 'user' },
  { username: 'dennis', role: 'user' },
  { username: 'edsger', role: 'user' },
]

/** Known on purpose: these are demo accounts. */
const passwordOf = (username: string) => `demo-${username}-pass`

/** Gives a user without platform connections two or three of them; returns how many it has. */
async function ensurePlatforms(sql: Pool, userId: number, index: number): Promise<number> {
  return sql.begin(async (tx) => {
    // The row lock keeps two seeds running at once from both adding connections.
    await tx`select id from users where id = ${userId} for update`
    const [{ count }] = (await tx`select count(*)::int as count from platforms where user_id = ${userId}`) as unknown as [{ count: number }]
    if (count > 0) return count
    const mine = PLATFORMS.slice(0, index % 2 === 0 ? 3 : 2)
    const defaultIndex = index % mine.length
    for (const [i, p] of mine.entries()) {
      await tx`insert into platforms (user_id, name, type, instance_url, is_default)
        values (${userId}, ${p.name}, ${p.type}, ${p.instanceUrl}, ${i === defaultIndex})`
    }
    return mine.length
  })
}

async function main() {
  const config = loadConfig({ ...readDotEnv(), ...process.env })
  if (config.production && !process.argv.includes('--force')) {
    throw new ConfigError('NODE_ENV=production: refusing to create demo accounts with known passwords (pass --force to do it anyway)')
  }
  const resources = await openResources(config)
  try {
    const { db, sql } = resources.database
    if (resources.bootstrap) {
      console.log(`First admin created: username "${resources.bootstrap.username}", password "${resources.bootstrap.password}" (shown only this once)`)
    }
    const rows: string[][] = []
    for (const [index, demo] of DEMO_USERS.entries()) {
      const password = passwordOf(demo.username)
      let user = await findUserByUsername(db, demo.username)
      let status = 'exists'
      if (!user) {
        try {
          user = await createUser(db, { username: demo.username, password, role: demo.role, email: `${demo.username}@example.com` })
          status = 'created'
        } catch (err) {
          // Another seed created it between our look-up and our insert.
          if ((err as { code?: string }).code !== 'USERNAME_TAKEN') throw err
          user = await findUserByUsername(db, demo.username)
          if (!user) throw err
        }
      }
      const platforms = await ensurePlatforms(sql, user.id, index)
      rows.push([user.role, user.username, password, String(platforms), status])
    }
    printTable(['role', 'username', 'password', 'platforms', 'status'], rows)
    if (rows.some((r) => r[4] === 'exists')) console.log('\nAccounts marked "exists" were left as they were: their password is the one shown unless someone changed it.')
    console.log(`\nSign in at ${config.publicUrl} (API docs at ${new URL('/docs', config.publicUrl)}).`)
  } finally {
    await resources.close()
  }
}

function printTable(header: string[], rows: string[][]) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()
  console.log(line(header))
  console.log(line(widths.map((w) => '-'.repeat(w))))
  for (const row of rows) console.log(line(row))
}

main().catch((err) => {
  if (err instanceof ConfigError || err instanceof DependencyError) console.error(`seed:demo: ${err.message}`)
  else console.error('seed:demo: failed:', err)
  process.exit(1)
})
