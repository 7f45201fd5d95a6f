// Every path that ends a session (issue 4) enqueues exactly one session-ended job, which
// releases the session's locks once and announces it once, and finalizes the ending.
import t from 'tap'
import { runCleanup } from '../../src/jobs/cleanup.js'
import { ADMIN_PASSWORD, build, type Client, type TestApp } from '../helpers/app.js'
import { listen, openTab } from '../helpers/ws.js'
import { sleep, until } from '../helpers/wait.js'

interface Case {
  reason: string
  /** Ends `victim` (signed in as `name`); `other` is a second session of the same user. */
  end(ctx: { app: TestApp; victim: Client; other: Client; name: string; userId: number }): Promise<unknown>
}

const HOUR = 3600_000

/** Moves a session's lifetime into the past; `onList` keeps it on the sweep's lifetime list. */
async function pastLifetime(app: TestApp, sessionId: string, onList: boolean) {
  const over = Date.now() - 1000
  const [row] = await app.ctx.database.sql`update sessions set expires_at = ${new Date(over)} where id = ${sessionId} returning token_hash`
  await app.resources.redis.del(app.ctx.keys.sessionByToken(row!.token_hash as string))
  if (onList) await app.resources.redis.zadd(app.ctx.keys.deadlines(sessionId).lifetime, over, sessionId)
  else for (const key of app.ctx.keys.deadlines(sessionId).lists) await app.resources.redis.zrem(key, sessionId)
}

const cases: Case[] = [
  { reason: 'logout', end: ({ victim }) => victim.post('/api/auth/logout') },
  { reason: 'logout_all', end: ({ other }) => other.post('/api/auth/logout-all') },
  { reason: 'revoked_by_user', end: ({ victim, other }) => other.delete(`/api/sessions/${victim.sessionId}`) },
  {
    reason: 'session_limit',
    end: async ({ app, other, name, userId }) => {
      await other.get('/api/platforms') // so that the victim is the least recently active
      await app.ctx.settings.update({ concurrentLimits: { byUser: { [String(userId)]: 2 } } }, 1)
      await app.client().signIn(name) // the third session of a user allowed two: the oldest goes
    },
  },
  { reason: 'password_changed', end: ({ other }) => other.post('/api/auth/password', { currentPassword: 'correct-horse-battery', newPassword: 'another-long-password' }) },
  {
    reason: 'user_disabled',
    end: async ({ app, userId }) => (await app.client().signIn('admin', ADMIN_PASSWORD)).patch(`/admin/users/${userId}`, { disabled: true }),
  },
  { reason: 'compromised', end: ({ victim }) => victim.get('/api/session_state', { 'user-agent': 'curl/8.0' }) },
  {
    reason: 'lifetime', // by the sweep
    end: ({ app, victim }) => pastLifetime(app, victim.sessionId!, true),
  },
  {
    reason: 'idle_timeout', // by the sweep
    end: async ({ app, victim }) => {
      const quietSince = Date.now() - 3 * HOUR
      await app.ctx.database.sql`update sessions set last_activity = ${new Date(quietSince)} where id = ${victim.sessionId!}`
      await app.resources.redis.hset(app.ctx.keys.sessionPresence(victim.sessionId!), 'lastActivity', quietSince)
      await app.resources.redis.zadd(app.ctx.keys.deadlines(victim.sessionId!).active, quietSince, victim.sessionId!)
    },
  },
  {
    reason: 'lifetime', // by a request, before any sweep sees it
    end: async ({ app, victim }) => {
      await pastLifetime(app, victim.sessionId!, false)
      return victim.get('/api/session_state')
    },
  },
  { reason: 'admin', end: async ({ app, victim }) => (await app.client().signIn('admin', ADMIN_PASSWORD)).delete(`/admin/sessions/${victim.sessionId}`, { reason: 'test' }) },
  {
    reason: 'lifetime', // by the cleanup: on none of the sweep's lists
    end: async ({ app, victim }) => {
      await pastLifetime(app, victim.sessionId!, false)
      const { ctx } = app
      await runCleanup({ ...ctx, batchSize: 10, retention: ctx.config.retention })
    },
  },
  {
    reason: 'idle_timeout', // by the cleanup
    end: async ({ app, victim }) => {
      await app.ctx.database.sql`update sessions set last_activity = now() - interval '3 hours' where id = ${victim.sessionId!}`
      for (const key of app.ctx.keys.deadlines(victim.sessionId!).lists) await app.resources.redis.zrem(key, victim.sessionId!)
      await app.resources.redis.unlink(app.ctx.keys.sessionPresence(victim.sessionId!))
      const { ctx } = app
      await runCleanup({ ...ctx, batchSize: 10, retention: ctx.config.retention })
    },
  },
]

t.test('every ending path: one session-ended job, locks released and announced once', async (t) => {
  const app = await build(t, { LOGIN_RATE_LIMIT: '1000/min' }, { workers: true })
  const sql = app.ctx.database.sql
  await app.user('observer')
  const observer = await app.client().signIn('observer')
  const { tab } = await openTab(await listen(app), observer.sid!, { tabId: 'O' })

  for (const [i, c] of cases.entries()) {
    t.test(`${c.reason} (case ${i})`, async (t) => {
      const name = `user${i}`
      const { id: userId } = await app.user(name)
      const victim = await app.client().signIn(name)
      const other = await app.client().signIn(name)
      const id = victim.sessionId!
      t.equal((await victim.post('/api/locks', { resource: `doc:${i}` })).statusCode, 201, 'the session holds a lock')
      await c.end({ app, victim, other, name, userId })

      await until('the ending to be finalized', async () => (await sql`select finalized_at from sessions where id = ${id}`)[0]?.finalized_at, 20_000)
      t.match((await sql`select status, end_reason from sessions where id = ${id}`)[0], { status: 'ended', end_reason: c.reason }, `ended with ${c.reason}`)
      const jobs = await app.ctx.queues.all.sessionEnded.getJobs(['completed', 'failed', 'active', 'waiting', 'delayed'], 0, 1000)
      const mine = jobs.filter((j) => j.data.sessionId === id)
      t.equal(mine.length, 1, 'exactly one session-ended job')
      t.equal(await mine[0]?.getState(), 'completed', 'and it completed')
      t.same(await sql`select resource from locks where session_id = ${id}`, [], 'the lock is released')
      const announced = await tab.next((m) => m.type === 'locks.released' && m.sessionId === id, 10_000)
      t.match(announced, { resources: [`doc:${i}`], reason: c.reason }, 'and announced')
      await sleep(300)
      t.equal(tab.messages.filter((m) => m.type === 'locks.released' && m.sessionId === id).length, 1, 'once')
      t.equal(
        (await sql`select count(*)::int as n from audit_events where session_id = ${id} and type = 'locks.released'`)[0]!.n,
        1,
        'one release audited',
      )
      t.equal((await sql`select count(*)::int as n from audit_events where session_id = ${id} and type = 'session.ended'`)[0]!.n, 1, 'one end audited')
    })
  }
})
