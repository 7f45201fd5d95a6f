// What an ending leaves in Redis goes with the session's event log once its follow-up is
// done (found by the soak, test/system/soak.system.ts: the notice and lock-release markers
// lived a day, the state version for the rest of the lifetime, finished jobs an hour).
import t from 'tap'
import { build } from '../helpers/app.js'
import { until } from '../helpers/wait.js'

const LOG_TTL_SECONDS = 40

t.test('a finalized ending leaves nothing in Redis that outlives its event log', async (t) => {
  const app = await build(t, { EVENT_LOG_TTL_SECONDS: String(LOG_TTL_SECONDS) }, { workers: true })
  const { platformIds } = await app.user('ada', { platforms: ['P0', 'P1'] })
  const ada = await app.client().signIn('ada')
  const other = await app.client().signIn('ada') // her other browser: the ending is noticed there
  t.equal((await ada.post(`/api/switch_platform/${platformIds[1]}`)).statusCode, 200, 'a state change: the session has a state version')
  t.equal((await ada.post('/api/locks', { resource: 'doc' })).statusCode, 201, 'and a lock')
  const { redis } = app.resources
  const k = app.ctx.keys
  const id = ada.sessionId!
  t.ok((await redis.pttl(k.sessionVersion(id))) > 86_400_000, 'while it is live, the version lives as long as the session')

  t.equal((await ada.post('/api/auth/logout')).statusCode, 204)
  const sql = app.ctx.database.sql
  await until('the ending finalized', async () => (await sql`select finalized_at from sessions where id = ${id}`)[0]!.finalized_at)
  const [release] = await sql`select id from audit_events where type = 'locks.released' and session_id = ${id}`
  const traces = {
    'the notice marker': k.sessionNoticed(id),
    'the state version': k.sessionVersion(id),
    'the lock release marker': k.lockReleaseAnnounced(Number(release!.id)),
    'the ended flag': k.sessionEnded(id),
    'the event log': k.sessionLog(id),
    'the seq counter': k.sessionSeq(id),
  }
  for (const [what, key] of Object.entries(traces)) {
    const ttl = await redis.pttl(key)
    t.ok(ttl > 0 && ttl <= LOG_TTL_SECONDS * 1000, `${what} expires with the event log (${ttl} ms)`)
  }
  const job = await app.ctx.queues.all.sessionEnded.getJob(`ended-${id}`)
  t.match(job?.opts.removeOnComplete, { age: LOG_TTL_SECONDS }, 'its finished job is kept as long')
  t.equal((await other.get('/api/session_state')).statusCode, 200, 'the other session lives on')
  t.match((await sql`select status from sessions where id = ${other.sessionId!}`)[0], { status: 'active' }, 'and is active in PostgreSQL')

  // A state change committed just before the ending and published just after it.
  const late = await app.ctx.bus.publishSessionEvent(id, { type: 'platform.switched', version: 99 }, new Date(Date.now() + 86_400_000), 99)
  t.equal(late, 0, 'an event after the terminal one is dropped')
  const seqTtl = await redis.pttl(k.sessionSeq(id))
  t.ok(seqTtl > 0 && seqTtl <= LOG_TTL_SECONDS * 1000, `and the seq counter still expires with the log (${seqTtl} ms)`)
})
