// One rule for the end reason (issue 4, audit item c): whichever path ends a session past
// its deadlines (a request, the sweep, the cleanup, a login counting the user's sessions),
// the deadline that passed first decides.
import t from 'tap'
import { runCleanup } from '../../src/jobs/cleanup.js'
import { IdleSweep } from '../../src/presence/sweep.js'
import { expiryReason } from '../../src/sessions/deadlines.js'
import type { Test } from 'tap'
import { build, type Client, type TestApp } from '../helpers/app.js'

t.test('expiryReason: the first deadline to pass decides', async (t) => {
  const now = 1_000_000
  const timeout = 100
  t.equal(expiryReason({ expiresAt: now + 1, lastActivity: now - 99 }, timeout, now), null, 'both ahead')
  t.equal(expiryReason({ expiresAt: now + 1, lastActivity: now - 100 }, timeout, now), 'idle_timeout', 'the idle deadline, at the ms')
  t.equal(expiryReason({ expiresAt: now, lastActivity: now }, timeout, now), 'lifetime', 'the lifetime, at the ms')
  t.equal(expiryReason({ expiresAt: now - 50, lastActivity: now - 200 }, timeout, now), 'idle_timeout', 'both passed, idle first')
  t.equal(expiryReason({ expiresAt: now - 150, lastActivity: now - 200 }, timeout, now), 'lifetime', 'both passed, lifetime first')
  t.equal(expiryReason({ expiresAt: now - 100, lastActivity: now - 200 }, timeout, now), 'lifetime', 'a tie counts as lifetime')
})

const HOUR = 3600_000
// The idle timeout is two hours (the default); both sessions were last active three hours ago.
const cases = [
  { name: 'lifetime first', expiresAgo: 2 * HOUR, reason: 'lifetime' },
  { name: 'idle first', expiresAgo: 10 * 60_000, reason: 'idle_timeout' },
] as const

/** Puts a session past both deadlines, in PostgreSQL and on the sweep's lists. */
async function pastBoth(app: TestApp, sessionId: string, expiresAgo: number) {
  const now = Date.now()
  const last = now - 3 * HOUR
  const expiresAt = now - expiresAgo
  const { keys } = app.ctx
  const redis = app.resources.redis
  const [row] = await app.ctx.database.sql`update sessions set last_activity = ${new Date(last)}, expires_at = ${new Date(expiresAt)}
    where id = ${sessionId} returning token_hash`
  await redis.del(keys.sessionByToken(row!.token_hash as string))
  await redis.hset(keys.sessionPresence(sessionId), 'lastActivity', last)
  await redis.zadd(keys.deadlines(sessionId).active, last, sessionId)
  await redis.zadd(keys.deadlines(sessionId).lifetime, expiresAt, sessionId)
}

const paths: Record<string, (app: TestApp, ada: Client, t: Test, reason: string) => Promise<void>> = {
  'a request': async (_app, ada, t, reason) => {
    const res = await ada.get('/api/session_state')
    t.equal(res.statusCode, 401)
    t.match(res.json(), { error: { code: 'SESSION_EXPIRED', reason } }, 'the refusal names it')
  },
  'the sweep': async (app) => {
    const { ctx } = app
    await new IdleSweep({ audit: ctx.audit, redis: ctx.redis, db: ctx.database.db, keys: ctx.keys, bus: ctx.bus, sessions: ctx.sessions, settings: ctx.settings }).tick()
  },
  'the cleanup': async (app, ada) => {
    const { ctx } = app
    for (const key of ctx.keys.deadlines(ada.sessionId!).lists) await ctx.redis.zrem(key, ada.sessionId!) // seen by nothing but the cleanup
    await runCleanup({
      locks: ctx.locks,
      redis: ctx.redis,
      keys: ctx.keys,
      sessions: ctx.sessions,
      sessionDetails: ctx.sessionDetails,
      endings: ctx.endings,
      audit: ctx.audit,
      loginHistory: ctx.loginHistory,
      settings: ctx.settings,
      batchSize: 10,
      retention: ctx.config.retention,
      uploads: ctx.uploads,
    })
  },
  'a login counting the user’s sessions': async (app) => {
    await app.client().signIn('ada')
  },
}

for (const c of cases) {
  for (const [path, run] of Object.entries(paths)) {
    t.test(`${c.name}: ${path} ends it with ${c.reason}`, async (t) => {
      const app = await build(t)
      await app.user('ada')
      const ada = await app.client().signIn('ada')
      await pastBoth(app, ada.sessionId!, c.expiresAgo)
      await run(app, ada, t, c.reason)
      const [row] = await app.ctx.database.sql`select status, end_reason from sessions where id = ${ada.sessionId!}`
      t.match(row, { status: 'ended', end_reason: c.reason })
    })
  }
}
