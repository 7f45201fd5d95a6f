// The demo accounts: users of every role, each with two or three platform connections,
// made through the app's own code. Created by `npm run seed:demo`, and on the first start
// in development so that a new clone lands on an app somebody can sign in to. Safe to run
// again: existing accounts are left as they are (a user without platforms gets them).
import { eq } from 'drizzle-orm'
import { platforms, users } from '../../db/schema.js'
import { createUser, findUserByUsername } from '../auth/users.js'
import type { Role } from '../settings/roles.js'
import type { Database, Db } from '../infra/db.js'

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
export const passwordOf = (username: string) => `demo-${username}-pass`

/** Gives a user without platform connections two or three of them; returns how many it has. */
async function ensurePlatforms(db: Db, userId: number, index: number): Promise<number> {
  return db.transaction(async (tx) => {
    // The row lock keeps two seeds running at once from both adding connections.
    await tx.select({ id: users.id }).from(users).where(eq(users.id, userId)).for('update')
    const count = await tx.$count(platforms, eq(platforms.userId, userId))
    if (count > 0) return count
    const mine = PLATFORMS.slice(0, index % 2 === 0 ? 3 : 2)
    const defaultIndex = index % mine.length
    await tx.insert(platforms).values(mine.map((p, i) => ({ userId, name: p.name, type: p.type, instanceUrl: p.instanceUrl, isDefault: i === defaultIndex })))
    return mine.length
  })
}

export interface DemoAccount {
  role: string
  username: string
  password: string
  platforms: number
  status: 'created' | 'exists'
}

/** Creates the demo accounts that are missing; every account's row, as a table would show it. */
export async function seedDemoAccounts({ db }: Pick<Database, 'db'>): Promise<DemoAccount[]> {
  const rows: DemoAccount[] = []
  for (const [index, demo] of DEMO_USERS.entries()) {
    const password = passwordOf(demo.username)
    let user = await findUserByUsername(db, demo.username)
    let status: DemoAccount['status'] = 'exists'
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
    const connections = await ensurePlatforms(db, user.id, index)
    rows.push({ role: user.role, username: user.username, password, platforms: connections, status })
  }
  return rows
}

/** The accounts as a plain-text table. */
export function accountTable(rows: DemoAccount[]): string {
  const header = ['role', 'username', 'password', 'platforms', 'status']
  const cells = rows.map((r) => [r.role, r.username, r.password, String(r.platforms), r.status])
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]!.length)))
  const line = (row: string[]) => row.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n')
}
