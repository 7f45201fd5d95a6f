// `npm run seed:demo` against a throw-away database: run twice, then sign in as a seeded user.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { configVariables } from '../../src/config.js'
import { dropDatabase } from '../../src/infra/db.js'
import { connectRedis, deleteKeysWithPrefix } from '../../src/infra/redis.js'
import { build, testDatabaseUrl, testRedisUrl } from '../helpers/app.js'

const root = fileURLToPath(new URL('../..', import.meta.url))

interface Seeded {
  role: string
  username: string
  password: string
  platforms: number
  status: string
}

function seed(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string; rows: Seeded[] }> {
  const base: Record<string, string | undefined> = { ...process.env }
  for (const v of configVariables) delete base[v.env]
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'db/seed-demo.ts'], { cwd: root, env: { ...base, LOG_LEVEL: 'silent', ...env } })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code) => {
      const rows = [...stdout.matchAll(/^(admin|reviewer|user) +(\S+) +(\S+) +(\d+) +(created|exists)$/gm)].map((m) => ({
        role: m[1]!,
        username: m[2]!,
        password: m[3]!,
        platforms: Number(m[4]),
        status: m[5]!,
      }))
      resolve({ code, stdout, stderr, rows })
    })
  })
}

t.test('seed:demo creates users of every role with platforms, is idempotent, and its credentials sign in', async (t) => {
  const id = randomBytes(6).toString('hex')
  const env = {
    DATABASE_URL: testDatabaseUrl(`tessera_test_${id}`),
    REDIS_URL: testRedisUrl(),
    REDIS_KEY_PREFIX: `tessera-test:${id}:`,
  }
  t.teardown(async () => {
    await dropDatabase(env.DATABASE_URL)
    const redis = await connectRedis(env.REDIS_URL)
    await deleteKeysWithPrefix(redis, env.REDIS_KEY_PREFIX)
    redis.disconnect()
  })

  const first = await seed(env)
  t.equal(first.code, 0, first.stderr)
  t.match(first.stdout, /First admin created: username "admin", password "[^"]+"/, 'a fresh database also gets the first admin, printed once')
  const roles = (rows: Seeded[]) => {
    const n: Record<string, number> = {}
    for (const r of rows) n[r.role] = (n[r.role] ?? 0) + 1
    return n
  }
  t.same(roles(first.rows), { admin: 2, reviewer: 3, user: 4 })
  t.ok(first.rows.every((r) => r.status === 'created'))
  t.ok(first.rows.every((r) => r.platforms >= 2 && r.platforms <= 3))

  const second = await seed(env)
  t.equal(second.code, 0, `a second run does not fail: ${second.stderr}`)
  t.notMatch(second.stdout, 'First admin created')
  t.same(
    second.rows.map((r) => [r.username, r.password, r.platforms, r.status]),
    first.rows.map((r) => [r.username, r.password, r.platforms, 'exists']),
  )

  const app = await build(t, { DATABASE_URL: env.DATABASE_URL })
  const { sql } = app.resources.database
  const users = await sql`select username, role from users where username = any(${first.rows.map((r) => r.username)}) order by id`
  t.same(
    users.map((u) => [u.username, u.role]),
    first.rows.map((r) => [r.username, r.role]),
    'each account exists once, with its role',
  )
  const platforms = await sql`select u.username, count(*)::int as n, count(*) filter (where p.is_default)::int as defaults,
      array_agg(distinct p.type order by p.type) as types
    from platforms p join users u on u.id = p.user_id group by u.username`
  t.equal(platforms.length, first.rows.length, 'every seeded user has platforms')
  for (const p of platforms) {
    const row = first.rows.find((r) => r.username === p.username)!
    t.equal(p.n, row.platforms, `${p.username}: platforms not duplicated by the second run`)
    t.equal(p.defaults, 1, `${p.username}: one default`)
  }
  t.same(new Set(platforms.flatMap((p) => p.types as string[])), new Set(['mastodon', 'other', 'pixelfed']))

  for (const role of ['admin', 'reviewer', 'user']) {
    const seeded = first.rows.find((r) => r.role === role)!
    const client = app.client()
    const res = await client.login(seeded.username, seeded.password)
    t.equal(res.statusCode, 200, `${role} ${seeded.username} signs in with the printed password`)
    const [def] = await sql`select p.id from platforms p join users u on u.id = p.user_id where u.username = ${seeded.username} and p.is_default`
    t.match(res.json(), { user: { username: seeded.username, role }, session: { platform: { id: def!.id } } }, 'starting on its default platform')
    const list = await client.get('/api/platforms')
    t.equal(list.json().items.length, seeded.platforms)
  }
})
