import t from 'tap'
import { runCleanup } from '../../src/jobs/cleanup.js'
import { build } from '../helpers/app.js'
import { listen, openTab } from '../helpers/ws.js'

t.test('cleanup releases and announces locks of sessions whose session-ended job never ran', async (t) => {
  const app = await build(t)
  await app.user('ada')
  await app.user('bob')
  const ada = await app.client().signIn('ada')
  const fresh = await app.client().signIn('ada')
  const bob = await app.client().signIn('bob')
  const { tab } = await openTab(await listen(app), bob.sid!, { tabId: 'B' })
  t.equal((await ada.post('/api/locks', { resource: 'doc:old' })).statusCode, 201)
  t.equal((await fresh.post('/api/locks', { resource: 'doc:new' })).statusCode, 201)
  // Both sessions end without their job running (no workers here); one of them long ago.
  await app.ctx.sessions.end([ada.sessionId!, fresh.sessionId!], 'logout')
  await app.ctx.database.sql`update sessions set ended_at = now() - interval '5 minutes' where id = ${ada.sessionId!}`
  const { ctx } = app
  const deps = {
    locks: ctx.locks,
    sql: ctx.database.sql,
    redis: ctx.redis,
    keys: ctx.keys,
    sessions: ctx.sessions,
    store: ctx.store,
    settings: ctx.settings,
    batchSize: 10,
    retention: ctx.config.retention,
  }
  const result = await runCleanup(deps)
  t.equal(result.locksReleased, 1, 'only the lock of the session that ended long ago')
  t.match(await tab.type('locks.released'), { resources: ['doc:old'], sessionId: ada.sessionId, reason: 'logout' })
  const left = await ctx.database.sql`select resource from locks`
  t.same(
    left.map((r) => r.resource),
    ['doc:new'],
    'a fresh ending is left to its own job',
  )
  t.equal((await runCleanup(deps)).locksReleased, 0, 'nothing the second time')
})
