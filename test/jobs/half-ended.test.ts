// No session half-ended (quality.md R4; issue 4, audit item b): when the process that
// ended a session dies right after the commit, the repair pass queues the session-ended
// job, which publishes the terminal event (tabs close), clears caches and presence,
// releases the locks and announces it: each exactly once.
import t from 'tap'
import { hashToken } from '../../src/sessions/tokens.js'
import { build } from '../helpers/app.js'
import { listen, openTab } from '../helpers/ws.js'
import { sleep, until } from '../helpers/wait.js'

t.test('an ending committed by a process that then died is completed by the workers, exactly once', async (t) => {
  const app = await build(t, {}, { workers: true })
  await app.user('ada')
  await app.user('bob')
  const ada = await app.client().signIn('ada')
  const other = await app.client().signIn('ada')
  const bob = await app.client().signIn('bob')
  const id = ada.sessionId!
  const address = await listen(app)
  const { tab } = await openTab(address, ada.sid!, { tabId: 'A' })
  const otherTab = (await openTab(address, other.sid!, { tabId: 'O' })).tab
  const bobTab = (await openTab(address, bob.sid!, { tabId: 'B' })).tab
  t.equal((await ada.post('/api/locks', { resource: 'doc' })).statusCode, 201)
  const sql = app.ctx.database.sql

  // The ender commits and dies: no event, no cache write, no job.
  const ended = await app.ctx.store.markEnded(app.ctx.database.db, [id], 'idle_timeout')
  t.equal(ended.length, 1, 'the end is committed')
  t.match(
    await sql`select type, data from audit_events where session_id = ${id} and type = 'session.ended'`,
    [{ type: 'session.ended', data: { reason: 'idle_timeout' } }],
    'with its audit event, in the same statement',
  )
  t.notOk(await app.ctx.queues.all.sessionEnded.getJob(`ended-${id}`), 'no job was queued')

  t.match(await tab.type('session.expired', 20_000), { reason: 'idle_timeout', seq: 1 }, 'the tab still hears why')
  t.equal((await tab.closed).code, 4002, 'and is closed 4002')
  const released = await bobTab.next((m) => m.type === 'locks.released', 20_000)
  t.same(released, { type: 'locks.released', resources: ['doc'], sessionId: id, reason: 'idle_timeout', at: released.at }, 'the lock release is announced')
  const notice = await otherTab.next((m) => m.type === 'user.notice' && m.kind === 'session_ended_elsewhere', 20_000)
  t.match(notice, { sessionId: id, reason: 'idle_timeout' }, 'the user’s other session is told')
  await until('the ending to be finalized', async () => (await sql`select finalized_at from sessions where id = ${id}`)[0]!.finalized_at)

  t.same(await sql`select resource from locks`, [], 'the lock is gone')
  t.equal(JSON.parse((await app.resources.redis.get(app.ctx.keys.sessionByToken(hashToken(ada.sid!))))!).status, 'ended', 'the token cache holds the ended record')
  t.equal(await app.resources.redis.exists(app.ctx.keys.sessionPresence(id)), 0, 'presence is gone')
  t.equal((await ada.get('/api/session_state')).statusCode, 401)

  await sleep(6000) // past the repair delay again: nothing more may happen
  const audit = await sql`select type from audit_events where session_id = ${id} and type in ('session.ended', 'locks.released') order by id`
  t.same(
    audit.map((r) => r.type),
    ['session.ended', 'locks.released'],
    'one audit event each',
  )
  const log = await app.resources.redis.xrange(app.ctx.keys.sessionLog(id), '-', '+')
  t.equal(log.length, 1, 'one event in the session log: the terminal one')
  t.equal(bobTab.messages.filter((m) => m.type === 'locks.released').length, 1, 'one release announcement')
  t.equal(otherTab.messages.filter((m) => m.type === 'user.notice' && m.kind === 'session_ended_elsewhere').length, 1, 'one notice')
  const job = await app.ctx.queues.all.sessionEnded.getJob(`ended-${id}`)
  t.equal(await job?.getState(), 'completed', 'its job was queued by the repair pass and completed')
})
