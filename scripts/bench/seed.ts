// Signed-in sessions for a benchmark, made quickly but through Tessera's own code.
//
// Logging in S times through HTTP would spend most of the set-up in argon2 (tens of ms of
// CPU per login on this machine, and the login rate limit per IP). So: one user is made
// with createUser (one real argon2 hash), the others are inserted in one statement with a
// copy of that hash, every user gets its platforms, and each session is opened with
// Sessions.open, which is what the login route calls once the password is right (the
// PostgreSQL row, the per-user limit check, Redis presence and the sweep's lists).
// One session per user keeps the limit check O(1) per login; with one user holding
// thousands of sessions every login would scan all of them.
import type { Tessera } from '../../src/app.js'
import { createUser } from '../../src/auth/users.js'
import { csrfTokenFor, parseDevice } from '../../src/sessions/tokens.js'
import { progress, USER_AGENT } from './load-process.js'

export interface SeededSession {
  id: string
  userId: number
  /** The `Cookie` header value a browser of this session sends. */
  cookie: string
  csrf: string
  /** Platform ids of the user; the first is active when the session opens. */
  platforms: number[]
  expiresAt: number
}

const PASSWORD = 'bench-password-that-is-long-enough-1'

export async function seedSessions(name: string, tessera: Tessera, count: number, opts: { platformsPerUser: number; usernamePrefix: string }): Promise<SeededSession[]> {
  const { ctx } = tessera
  const { sql, db } = ctx.database
  const started = performance.now()
  const first = await createUser(db, { username: `${opts.usernamePrefix}0`, password: PASSWORD, role: 'user', email: null })
  if (count > 1) {
    await sql`insert into users (username, email, password_hash, role)
      select ${opts.usernamePrefix} || g, null, ${first.passwordHash}, 'user' from generate_series(1, ${count - 1}) g`
  }
  const kinds = ['mastodon', 'pixelfed', 'other'] as const
  for (let p = 0; p < opts.platformsPerUser; p++) {
    const type = kinds[p % kinds.length]!
    await sql`insert into platforms (user_id, name, type, instance_url, is_default)
      select id, ${`Bench ${type} ${p + 1}`}, ${type}, ${`https://${type}${p + 1}.example`}, ${p === 0}
      from users where username like ${`${opts.usernamePrefix}%`}`
  }
  const users = await sql`select u.id, array_agg(p.id order by p.id) as platforms
    from users u join platforms p on p.user_id = u.id
    where u.username like ${`${opts.usernamePrefix}%`} group by u.id order by u.id`
  progress(name, `${users.length} users with ${opts.platformsPerUser} platforms each in ${((performance.now() - started) / 1000).toFixed(1)} s; opening sessions…`)

  const info = { ip: '127.0.0.1', userAgent: USER_AGENT, acceptLanguage: undefined }
  const device = parseDevice(USER_AGENT)
  const out: SeededSession[] = new Array(users.length)
  let next = 0
  let done = 0
  let lastReport = performance.now()
  // A few at a time: Sessions.open takes a transaction with an advisory lock, and the pool is small.
  const worker = async () => {
    for (let i = next++; i < users.length; i = next++) {
      const u = users[i]!
      const platforms = (u.platforms as number[]).map(Number)
      const opened = await ctx.sessions.open({ id: u.id as number, role: 'user' }, { platformId: platforms[0] ?? null, info, device })
      out[i] = {
        id: opened.id,
        userId: u.id as number,
        cookie: `sid=${opened.token}`,
        csrf: csrfTokenFor(ctx.secret, opened.id),
        platforms,
        expiresAt: opened.expiresAt.getTime(),
      }
      done++
      if (performance.now() - lastReport > 2000) {
        lastReport = performance.now()
        progress(name, `opened ${done}/${users.length} sessions`)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(8, ctx.config.databasePoolMax) }, worker))
  progress(name, `${out.length} sessions open after ${((performance.now() - started) / 1000).toFixed(1)} s`)
  return out
}
