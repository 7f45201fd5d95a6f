// Input that comes too late (issue 4, audit item a): input after the idle deadline does not
// revive a session but ends it, at once, even with no worker running; input for an ended
// session writes nothing, and the activity flush never touches an ended row.
import t from 'tap'
import { flushActivity } from '../../src/presence/activity-flush.js'
import { build, type TestApp } from '../helpers/app.js'
import { listen, openTab } from '../helpers/ws.js'
import { sleep, until } from '../helpers/wait.js'

const rowOf = async (app: TestApp, id: string) =>
  (await app.ctx.database.sql`select status, end_reason, last_activity from sessions where id = ${id}`)[0]!

for (const message of ['activity', 'heartbeat with a newer lastInputAt'] as const) {
  t.test(`${message} after the idle deadline ends the session (idle_timeout) instead of reviving it, with no worker running`, async (t) => {
    const app = await build(t) // no workers: nothing else would end it
    await app.user('ada')
    await app.ctx.settings.update({ idleAfterSeconds: 1, idleTimeoutSeconds: 2, idleWarningSeconds: 0 }, 1)
    const ada = await app.client().signIn('ada')
    const { tab } = await openTab(await listen(app), ada.sid!, { tabId: 'A' })
    // Its clock moved on: the last input 3.5 s ago, 1.5 s past the idle deadline.
    const quietSince = Date.now() - 3500
    await app.ctx.database.sql`update sessions set last_activity = ${new Date(quietSince)} where id = ${ada.sessionId!}`
    await app.resources.redis.hset(app.ctx.keys.sessionPresence(ada.sessionId!), 'lastActivity', quietSince)
    t.match(await rowOf(app, ada.sessionId!), { status: 'active' }, 'nothing has ended it yet')
    tab.send(message === 'activity' ? { type: 'activity', at: Date.now() } : { type: 'heartbeat', lastInputAt: Date.now() })
    t.match(await tab.type('session.expired'), { reason: 'idle_timeout', seq: 1 }, 'the tab is told it expired')
    t.equal((await tab.closed).code, 4002)
    t.notOk(
      tab.messages.some((m) => m.type === 'session.active'),
      'no session.active',
    )
    t.match(await rowOf(app, ada.sessionId!), { status: 'ended', end_reason: 'idle_timeout' })
    t.match((await ada.get('/api/session_state')).json(), { error: { code: 'SESSION_EXPIRED', reason: 'idle_timeout' } })
  })
}

t.test('input for a session that has ended writes no presence, no deadline and no last activity', async (t) => {
  const app = await build(t, {}, { workers: true })
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  const id = ada.sessionId!
  const stale = (await app.ctx.store.findById(id))! // what a tab opened before the end still holds
  await app.ctx.sessions.end([id], 'admin', { actorUserId: 1 })
  await until('the session-ended job to finish', async () => (await app.ctx.database.sql`select finalized_at from sessions where id = ${id}`)[0]!.finalized_at)
  const { keys } = app.ctx
  const redis = app.resources.redis
  const before = await rowOf(app, id)

  await sleep(50)
  await app.ctx.sessions.recordInput(stale, Date.now())
  t.equal(await redis.exists(keys.sessionPresence(id)), 0, 'no presence hash comes back')
  for (const key of keys.deadlines(id).lists) t.equal(await redis.zscore(key, id), null, `not on ${key.slice(app.prefix.length)}`)
  t.equal(await redis.sismember(keys.deadlines(id).dirty, id), 0, 'not marked for the write-behind')
  await flushActivity({ redis, db: app.ctx.database.db, keys })
  t.same(await rowOf(app, id), before, 'the ended row is unchanged')
})

t.test('the activity flush never updates an ended row', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  const id = ada.sessionId!
  await app.ctx.sessions.end([id], 'logout')
  const before = await rowOf(app, id)
  // Input that slipped in between the commit and the terminal event, still waiting for the write-behind.
  const { keys } = app.ctx
  await app.resources.redis.hset(keys.sessionPresence(id), 'lastActivity', Date.now() + 60_000)
  await app.resources.redis.sadd(keys.deadlines(id).dirty, id)
  await flushActivity({ redis: app.resources.redis, db: app.ctx.database.db, keys })
  t.same(await rowOf(app, id), before, 'last_activity of the ended row is not rewritten')
})
