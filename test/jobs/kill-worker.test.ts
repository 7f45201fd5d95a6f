// A worker killed (SIGKILL) in the middle of a session-ended job (quality.md R4): the job is
// retried by another worker and completes, the locks are released exactly once, and the
// other tabs still hear about it. The victim is a real process (test/fixtures/blocking-worker.ts)
// whose job stops for good right after the release, before the announcement. An ending
// releases its session's locks itself (issue 18); the job releases those the ending could
// not see (a lock taken while it waited), so the session here ends with its locks left behind.
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import t from 'tap'
import { projectRoot } from '../../src/infra/db.js'
import { build, startWorkers, type TestApp } from '../helpers/app.js'
import { processEnv } from '../helpers/process.js'
import { sample, until } from '../helpers/wait.js'
import { listen, openTab } from '../helpers/ws.js'

/** The blocking worker on the test app's database and key prefix. */
function blockingWorker(app: TestApp): { child: ChildProcess; output: () => string; line: (text: string, ms: number) => Promise<void> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/blocking-worker.ts'], {
    cwd: projectRoot(),
    env: { ...processEnv(app), LOG_LEVEL: 'silent' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  const waiters: (() => void)[] = []
  const onData = (chunk: Buffer) => {
    output += chunk
    for (const w of waiters.splice(0)) w()
  }
  child.stdout!.on('data', onData)
  child.stderr!.on('data', onData)
  child.on('exit', () => {
    for (const w of waiters.splice(0)) w()
  })
  const line = async (text: string, ms: number) => {
    const deadline = Date.now() + ms
    while (!output.split('\n').includes(text)) {
      if (child.exitCode !== null) throw new Error(`the worker exited with ${child.exitCode} before "${text}":\n${output}`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no "${text}" from the worker within ${ms} ms:\n${output}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }
  return { child, output: () => output, line }
}

t.test('a worker killed mid session-ended job: the job is retried and completes, the locks are released once (R4)', async (t) => {
  const app = await build(t)
  await app.user('ada')
  await app.user('bob')
  const ada = await app.client().signIn('ada')
  const bob = await app.client().signIn('bob')
  const sessionId = ada.sessionId!
  const address = await listen(app)
  const { tab } = await openTab(address, bob.sid!, { tabId: 'bob-1' })
  for (const resource of ['doc:1', 'doc:2']) t.equal((await ada.post('/api/locks', { resource })).statusCode, 201, `ada takes ${resource}`)

  const worker = blockingWorker(app)
  t.teardown(async () => {
    if (worker.child.exitCode === null && worker.child.signalCode === null) {
      worker.child.kill('SIGKILL')
      await once(worker.child, 'exit')
    }
  })
  await worker.line('ready', 60_000)

  // ada's session ends as a logout does, its locks left to the job, which is enqueued.
  const sql = app.ctx.database.sql
  await sql`update sessions set status = 'ended', end_reason = 'logout', ended_at = now(), version = version + 1 where id = ${sessionId}`
  await app.ctx.queues.enqueueEnded([(await app.ctx.store.findEnded(sessionId))!])
  await worker.line('released', 20_000)
  t.same(await sql`select resource from locks`, [], 'the killed worker had released the locks')
  const exited = once(worker.child, 'exit')
  worker.child.kill('SIGKILL')
  t.same(await exited, [null, 'SIGKILL'], 'the worker is gone, in the middle of the job')
  t.notOk(
    tab.messages.some((m) => m.type === 'locks.released'),
    'nobody heard of the release yet',
  )
  const job = await app.ctx.queues.all.sessionEnded.getJob(`ended-${sessionId}`)
  t.equal(await job?.getState(), 'active', 'the job is left active with a lock that nobody renews')

  const workers = await startWorkers(app, { lockDurationMs: 1000 })
  t.teardown(() => workers.close())
  const state = await until('the job to complete', async () => {
    const s = await (await app.ctx.queues.all.sessionEnded.getJob(`ended-${sessionId}`))?.getState()
    return s === 'completed' || s === 'failed' ? s : null
  })
  t.equal(state, 'completed', 'the stalled job is retried and completes')
  const done = (await app.ctx.queues.all.sessionEnded.getJob(`ended-${sessionId}`))!
  t.ok(done.stalledCounter >= 1, 'it was retried because it stalled')
  const jobsText = await app.ctx.metrics.registry.getSingleMetricAsString('tessera_jobs_total')
  t.ok(sample(jobsText, 'tessera_jobs_total', { queue: 'session-ended', result: 'stalled' }) >= 1, 'tessera_jobs_total counts the stall')
  t.equal(sample(jobsText, 'tessera_jobs_total', { queue: 'session-ended', result: 'failed' }), 0, 'and no failure')
  t.same(done.returnvalue, { released: [], announced: ['doc:1', 'doc:2'], finalized: true }, 'the retry releases nothing more and announces what the first attempt released')

  const released = await tab.next((m) => m.type === 'locks.released' && m.sessionId === sessionId, 10_000)
  t.same(released, { type: 'locks.released', resources: ['doc:1', 'doc:2'], sessionId, reason: 'logout', at: released.at }, 'another user’s tab hears of both locks')

  t.same(await sql`select resource from locks`, [], 'no lock left')
  const audit = await sql`select data from audit_events where type = 'locks.released' and session_id = ${sessionId}`
  t.same(
    audit.map((r) => r.data),
    [{ resources: ['doc:1', 'doc:2'], reason: 'logout' }],
    'the release happened once: one audit row',
  )
  const { keys } = app.ctx
  const redis = app.resources.redis
  t.equal(await redis.exists(keys.sessionPresence(sessionId), keys.sessionTabs(sessionId)), 0, 'the session’s presence keys are gone')
  for (const key of keys.deadlines(sessionId).lists) t.equal(await redis.zscore(key, sessionId), null, `not on ${key.slice(app.prefix.length)}`)
  t.equal(await redis.sismember(keys.deadlines(sessionId).dirty, sessionId), 0, 'nor in the write-behind set')
  const [row] = await sql`select finalized_at from sessions where id = ${sessionId}`
  t.ok(row!.finalized_at, 'the ending is finalized')
  await new Promise((r) => setTimeout(r, 500))
  t.equal(tab.messages.filter((m) => m.type === 'locks.released').length, 1, 'the release was announced once')
})
