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
//
// For 100,000 sessions even Sessions.open is too slow (a transaction each): seedPresence
// writes the same rows and Redis keys in bulk instead.
import { randomBytes, randomUUID } from 'node:crypto'
import type { Tessera } from '../../src/app.js'
import { createUser } from '../../src/auth/users.js'
import { byShard } from '../../src/sessions/keys.js'
import { crossSlot } from '../../src/infra/redis.js'
import { csrfTokenFor, parseDevice } from '../../src/sessions/tokens.js'
import { request } from 'undici'
import { ORIGIN, progress, USER_AGENT } from './load-process.js'

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

/** `count` users named prefix0…, one argon2 hash shared by all; their ids in that order. */
async function insertUsers({ sql, db }: Tessera['ctx']['database'], count: number, usernamePrefix: string): Promise<number[]> {
  const first = await createUser(db, { username: `${usernamePrefix}0`, password: PASSWORD, role: 'user', email: null })
  if (count <= 1) return [first.id]
  const rows = await sql`insert into users (username, email, password_hash, role)
    select ${usernamePrefix} || g, null, ${first.passwordHash}, 'user' from generate_series(1, ${count - 1}) g
    returning id`
  return [first.id, ...rows.map((r) => r.id as number).sort((a, b) => a - b)]
}

export async function seedSessions(name: string, tessera: Tessera, count: number, opts: { platformsPerUser: number; usernamePrefix: string }): Promise<SeededSession[]> {
  const { ctx } = tessera
  const { sql } = ctx.database
  const started = performance.now()
  await insertUsers(ctx.database, count, opts.usernamePrefix)
  const kinds = ['mastodon', 'pixelfed', 'other'] as const
  for (let p = 0; p < opts.platformsPerUser; p++) {
    const type = kinds[p % kinds.length]!
    await sql`insert into platforms (user_id, name, type, instance_url, is_default)
      select id, ${`Bench ${type} ${p + 1}`}, ${type}, ${`https://${type}${p + 1}.example`}, ${p === 0}
      from users where username like ${`${opts.usernamePrefix}%`}`
  }
  const users = await sql`select u.id, u.password_hash, array_agg(p.id order by p.id) as platforms
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
      const opened = await ctx.sessions.open({ id: u.id as number, role: 'user', passwordHash: u.password_hash as string }, { platformId: platforms[0] ?? null, info, device })
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

/** A session put straight into PostgreSQL and Redis by seedPresence. */
export interface PresenceSession {
  id: string
  userId: number
  expiresAt: number
  lastActivity: number
}

const CHUNK = 10_000

/**
 * Many sessions in presence, fast, for benchmarks of what runs over all of them (the idle
 * sweep): one user each, the users and session rows in bulk statements, then pipelined
 * writes of the keys Sessions.open leaves (store.ts): the presence hash's lastActivity
 * (expiring with the session), `due:active` by last activity and `due:lifetime` by the end
 * of the lifetime. The rows hold the same last activity as Redis, as after the activity
 * write-behind, so `dirty:activity` stays empty. `times(i)` gives each session's deadlines.
 */
export async function seedPresence(
  name: string,
  tessera: Tessera,
  count: number,
  opts: { usernamePrefix: string; times: (i: number) => { expiresAt: number; lastActivity: number } },
): Promise<PresenceSession[]> {
  const { ctx } = tessera
  const { sql } = ctx.database
  const { keys } = ctx
  const started = performance.now()
  const userIds = await insertUsers(ctx.database, count, opts.usernamePrefix)
  const device = JSON.stringify(parseDevice(USER_AGENT))
  const out: PresenceSession[] = []
  let lastReport = performance.now()
  for (let from = 0; from < count; from += CHUNK) {
    const chunk: PresenceSession[] = []
    for (let i = from; i < Math.min(count, from + CHUNK); i++) chunk.push({ id: randomUUID(), userId: userIds[i]!, ...opts.times(i) })
    const iso = (ms: number) => new Date(ms).toISOString()
    await sql`insert into sessions (id, user_id, token_hash, expires_at, last_activity, ip, user_agent, device)
      select t.id, t.user_id, t.token_hash, t.expires_at, t.last_activity, '127.0.0.1', ${USER_AGENT}, ${device}::jsonb
      from unnest(
        ${chunk.map((s) => s.id)}::uuid[], ${chunk.map((s) => s.userId)}::int[],
        ${chunk.map(() => randomBytes(32).toString('hex'))}::text[],
        ${chunk.map((s) => iso(s.expiresAt))}::text[]::timestamptz[], ${chunk.map((s) => iso(s.lastActivity))}::text[]::timestamptz[]
      ) as t(id, user_id, token_hash, expires_at, last_activity)`
    const pipeline = crossSlot(ctx.redis)
    for (const s of chunk) pipeline.hset(keys.sessionPresence(s.id), 'lastActivity', s.lastActivity).pexpireat(keys.sessionPresence(s.id), s.expiresAt)
    const byId = new Map(chunk.map((s) => [s.id, s]))
    for (const [d, ids] of byShard(keys, [...byId.keys()])) {
      pipeline.zadd(d.active, ...ids.flatMap((id) => [byId.get(id)!.lastActivity, id]))
      pipeline.zadd(d.lifetime, ...ids.flatMap((id) => [byId.get(id)!.expiresAt, id]))
    }
    for (const [err] of (await pipeline.exec()) ?? []) if (err) throw err
    out.push(...chunk)
    if (performance.now() - lastReport > 2000) {
      lastReport = performance.now()
      progress(name, `${out.length}/${count} sessions in presence`)
    }
  }
  progress(name, `${count} sessions in presence after ${((performance.now() - started) / 1000).toFixed(1)} s`)
  return out
}

/** Signs the bootstrap admin in through HTTP, with the load generator's headers (its fingerprint): its cookie and CSRF token. */
export async function signInAdmin(address: string, username: string, password: string): Promise<{ cookie: string; csrf: string }> {
  const res = await request(`http://${address}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: ORIGIN, 'user-agent': USER_AGENT },
    body: JSON.stringify({ username, password }),
  })
  const body = await res.body.text()
  if (res.statusCode !== 200) throw new Error(`admin sign-in answered ${res.statusCode}: ${body}`)
  const setCookie = [res.headers['set-cookie'] ?? []].flat().join(', ')
  const sid = /(?:^|,\s*)sid=([^;]+)/.exec(setCookie)?.[1]
  if (!sid) throw new Error('admin sign-in set no sid cookie')
  return { cookie: `sid=${sid}`, csrf: (JSON.parse(body) as { csrfToken: string }).csrfToken }
}
