// Jobs that fail (issue 4, "Resilience"; quality.md R4): a session-ended job that meets a
// real fault (its table is gone from PostgreSQL for a while) is retried with backoff and
// completes once the fault is over; tessera_jobs_total counts each failed attempt as
// `retried` and a job that runs out of attempts once as `failed`.
import t from 'tap'
import type { Tessera } from '../../src/app.js'
import { build } from '../helpers/app.js'
import { listen, openTab } from '../helpers/ws.js'
import { sample, until } from '../helpers/wait.js'

const jobs = async (app: Pick<Tessera, 'ctx'>, result: string) =>
  sample(await app.ctx.metrics.registry.getSingleMetricAsString('tessera_jobs_total'), 'tessera_jobs_total', { queue: 'session-ended', result })

t.test('a session-ended job that fails is retried with backoff; the metrics count attempts and final failures apart', async (t) => {
  const app = await build(t, {}, { workers: true })
  const sql = app.ctx.database.sql
  for (const name of ['ada', 'bob', 'cid']) await app.user(name)
  const ada = await app.client().signIn('ada')
  const bob = await app.client().signIn('bob')
  const cid = await app.client().signIn('cid')
  const { tab } = await openTab(await listen(app), cid.sid!, { tabId: 'C' })
  t.equal((await ada.post('/api/locks', { resource: 'doc:ada' })).statusCode, 201)
  t.equal((await bob.post('/api/locks', { resource: 'doc:bob' })).statusCode, 201)

  // Both sessions end, their locks released with the ending, as by a process that died
  // before it announced anything or queued a job.
  await app.ctx.store.markEnded(app.ctx.database.db, [bob.sessionId!], 'admin')
  await app.ctx.store.markEnded(app.ctx.database.db, [ada.sessionId!], 'logout')
  // The fault: the locks table is not there, so every job fails at its release step.
  await sql`alter table locks rename to locks_away`
  t.teardown(() => sql`alter table if exists locks_away rename to locks`.catch(() => {}))

  t.test('a job out of attempts counts as failed once', async (t) => {
    // bob's job, of two attempts.
    await app.ctx.queues.all.sessionEnded.add(
      'session-ended',
      { sessionId: bob.sessionId!, userId: 0, reason: 'admin' },
      { jobId: `ended-${bob.sessionId}`, attempts: 2, backoff: { type: 'fixed', delay: 100 } },
    )
    const job = await until('the job to fail for good', async () => {
      const j = await app.ctx.queues.all.sessionEnded.getJob(`ended-${bob.sessionId}`)
      // Read again once failed: the copy read just before may predate its last attempt.
      return (await j?.getState()) === 'failed' ? app.ctx.queues.all.sessionEnded.getJob(`ended-${bob.sessionId}`) : null
    })
    t.equal(job!.attemptsMade, 2, 'after both attempts')
    t.match(job!.failedReason, /locks/, 'with the fault as its reason')
    t.equal(await jobs(app, 'failed'), 1, 'counted failed once')
    t.equal(await jobs(app, 'retried'), 1, 'its first attempt counted as retried')
  })

  t.test('a job whose fault goes away is retried with backoff and completes', async (t) => {
    // ada's job, as the ending (or the repair pass) queues it.
    await app.ctx.queues.enqueueEnded([{ id: ada.sessionId!, userId: 0, reason: 'logout' }])
    const jobId = `ended-${ada.sessionId}`
    await until('the job to wait for its retry', async () => (await (await app.ctx.queues.all.sessionEnded.getJob(jobId))?.getState()) === 'delayed')
    t.pass('after a failed attempt the job waits (backoff), it is not failed')
    await until('a few attempts', async () => ((await app.ctx.queues.all.sessionEnded.getJob(jobId))?.attemptsMade ?? 0) >= 2)
    await sql`alter table locks_away rename to locks`
    const done = await until('the job to complete', async () => {
      const j = await app.ctx.queues.all.sessionEnded.getJob(jobId)
      // Read again once completed: the copy read just before may predate its return value.
      return (await j?.getState()) === 'completed' ? app.ctx.queues.all.sessionEnded.getJob(jobId) : null
    })
    t.ok(done!.attemptsMade >= 2, `it completed on a later attempt (${done!.attemptsMade} failed before)`)
    t.same(done!.returnvalue, { released: [], announced: ['doc:ada'], finalized: true }, 'it announces the release the ending made')
    t.match(await tab.next((m) => m.type === 'locks.released' && m.sessionId === ada.sessionId), { resources: ['doc:ada'], reason: 'logout' }, 'the release is announced')
    t.equal(await jobs(app, 'failed'), 1, 'no new final failure')
    t.ok((await jobs(app, 'retried')) >= 3, 'each failed attempt counted as retried')
    t.equal(await jobs(app, 'completed'), 1, 'one completion')
  })
})
