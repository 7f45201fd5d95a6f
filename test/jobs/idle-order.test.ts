// The idle sweep and input race: tabs must never end up showing "Still there?" for a
// session that is active.
import t from 'tap'
import type { AuditEntry } from '../../src/audit/service.js'
import { IdleSweep } from '../../src/presence/sweep.js'
import { build } from '../helpers/app.js'
import { listen, openTab } from '../helpers/ws.js'

t.test('session.idle and idle_warning never reach tabs after the session.active that supersedes them', async (t) => {
  // issue 12, defect 13: the sweep moved the session to its idle list, input brought it
  // back and published session.active, then the sweep published session.idle and the warning.
  const app = await build(t)
  await app.user('ada')
  await app.ctx.settings.update({ idleAfterSeconds: 1, idleTimeoutSeconds: 60, idleWarningSeconds: 59 }, 1)
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const { tab } = await openTab(address, ada.sid!, { tabId: 'A' })
  const { ctx } = app

  // The sweep as the workers run it; its audit step (after the move, before the tabs are
  // told) is where the input comes, and lands: its session.active is out before it goes on.
  let raced = false
  const audit = {
    async record(...entries: AuditEntry[]) {
      if (!raced && entries.some((e) => e.type === 'session.idle')) {
        raced = true
        tab.send({ type: 'activity', at: Date.now() })
        await tab.type('session.active')
      }
      await ctx.audit.record(...entries)
    },
  }
  const sweep = new IdleSweep({ audit, redis: ctx.redis, db: ctx.database.db, keys: ctx.keys, bus: ctx.bus, sessions: ctx.sessions, settings: ctx.settings })
  const result = await sweep.tick(Date.now() + 2000) // idle and warning both due
  t.ok(raced, 'the input came between the move and the announcement')
  t.match(result, { idled: 1, warned: 1 }, 'the sweep did move the session')

  // A last event: logged events arrive in order, so anything the sweep published is in by then.
  const keepUntil = new Date(Date.now() + 3_600_000)
  const last = await ctx.bus.publishSessionEvent(ada.sessionId!, { type: 'session.state', state: {} }, keepUntil)
  await tab.next((m) => m.seq === last)
  const types = tab.logged().map((m) => m.type)
  const active = types.indexOf('session.active')
  t.same(
    types.slice(active + 1).filter((type) => type === 'session.idle' || type === 'session.idle_warning'),
    [],
    `nothing says idle after session.active (${types.join(', ')})`,
  )
  t.equal((await ada.get('/api/session_state')).json().session.status, 'active', 'as the session is')
})
