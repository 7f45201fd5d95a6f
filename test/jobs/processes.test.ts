// Process roles as separate OS processes (issue 4): `ROLE=worker` serves only health and
// metrics on WORKER_PORT, `ROLE=api` runs no workers, two worker processes share the work
// (each sweep tick and each ending once), and SIGTERM lets a running job finish (R5).
import t from 'tap'
import { build, signedIn, type TestApp } from '../helpers/app.js'
import { spawnTessera, type TesseraProcess } from '../helpers/process.js'
import { listen, openTab } from '../helpers/ws.js'
import { sample, sleep, until } from '../helpers/wait.js'

const metricsOf = async (p: TesseraProcess) => (await fetch(`${p.url}/metrics`)).text()
const jobsOf = async (processes: TesseraProcess[], queue: string, result: string) =>
  (await Promise.all(processes.map(metricsOf))).reduce((n, text) => n + sample(text, 'tessera_jobs_total', { queue, result }), 0)

/** Puts an active session past the end of its lifetime, on the sweep's lifetime list. */
async function pastLifetime(app: TestApp, sessionId: string) {
  const over = new Date(Date.now() - 1000)
  const [row] = await app.ctx.database.sql`update sessions set expires_at = ${over} where id = ${sessionId} returning token_hash`
  await app.resources.redis.del(app.ctx.keys.sessionByToken(row!.token_hash as string))
  await app.resources.redis.zadd(app.ctx.keys.deadlines(sessionId).lifetime, over.getTime(), sessionId)
}

const statusOf = async (app: TestApp, id: string) =>
  (await app.ctx.database.sql`select status, end_reason, finalized_at from sessions where id = ${id}`)[0]!

t.test('ROLE=worker serves /healthz and /metrics (with tessera_sessions) on WORKER_PORT, and no API', async (t) => {
  const app = await build(t)
  await signedIn(app, 'ada')
  const worker = await spawnTessera(t, app, { ROLE: 'worker' })
  t.equal((await fetch(`${worker.url}/healthz`)).status, 200, '/healthz answers')
  t.equal((await fetch(`${worker.url}/readyz`)).status, 200, '/readyz answers')
  const metrics = await metricsOf(worker)
  t.ok(sample(metrics, 'tessera_sessions', { status: 'active' }) >= 1, 'tessera_sessions counts the active session')
  t.match(metrics, /tessera_sessions\{status="ended"\} \d+/, 'and the ended ones')
  for (const path of ['/api/session_state', '/api/auth/login', '/admin/sessions', '/docs']) {
    t.equal((await fetch(`${worker.url}${path}`)).status, 404, `no ${path}`)
  }
  t.same(await worker.stop(), { code: 0, signal: null }, 'SIGTERM: it exits 0')
})

t.test('ROLE=api runs no workers: a session past its deadline is not swept until a worker runs', async (t) => {
  const app = await build(t)
  const [ada] = await signedIn(app, 'ada')
  const api = await spawnTessera(t, app, { ROLE: 'api' })
  t.equal((await fetch(`${api.url}/api/session_state`)).status, 401, 'the api process serves the API')
  await pastLifetime(app, ada!.sessionId!)
  await sleep(4000) // four sweep ticks, had there been a sweep
  t.match(await statusOf(app, ada!.sessionId!), { status: 'active' }, 'nothing ended it')
  t.equal(await app.ctx.queues.all.idleSweep.getJobSchedulersCount(), 0, 'no sweep is even scheduled')

  const worker = await spawnTessera(t, app, { ROLE: 'worker' })
  await until('a worker to end it', async () => (await statusOf(app, ada!.sessionId!)).status === 'ended')
  t.match(await statusOf(app, ada!.sessionId!), { status: 'ended', end_reason: 'lifetime' }, 'the first worker ends it, by lifetime')
  await worker.stop()
})

t.test('two worker processes: each sweep tick runs once across them, each ending is processed once', async (t) => {
  const app = await build(t, { LOGIN_RATE_LIMIT: '1000/min' })
  const node2 = await app.node()
  const workers = [await spawnTessera(t, app, { ROLE: 'worker' }), await spawnTessera(t, app, { ROLE: 'worker' })]
  const sql = app.ctx.database.sql

  t.test('the sweep: each tick runs once across both processes', async (t) => {
    const completedIds = async () => (await app.ctx.queues.all.idleSweep.getJobs(['completed'], 0, 100)).map((j) => j.id!)
    const before = new Set(await completedIds())
    const ran = await jobsOf(workers, 'idle-sweep', 'completed')
    await until('three more ticks', async () => (await jobsOf(workers, 'idle-sweep', 'completed')) - ran >= 3)
    const ticks = (await completedIds()).filter((id) => !before.has(id))
    t.ok(ticks.length >= 3, `the sweep ran (${ticks.length} ticks)`)
    // A scheduler job's id is repeat:<scheduler>:<tick time>: one scheduler, one job per tick time.
    const schedulers = new Set(ticks.map((id) => id.split(':').slice(0, -1).join(':')))
    t.same([...schedulers], ['repeat:idle-sweep'], 'one schedule, not one per worker')
    const times = ticks.map((id) => id.split(':').at(-1))
    t.equal(new Set(times).size, times.length, 'no tick time was run twice')
    t.equal(await jobsOf(workers, 'idle-sweep', 'failed'), 0, 'no tick failed')
    const perProcess = await Promise.all(workers.map(async (w) => sample(await metricsOf(w), 'tessera_jobs_total', { queue: 'idle-sweep', result: 'completed' })))
    t.comment(`ticks per process: ${perProcess.join(', ')}`)
  })

  t.test('twelve endings, some raced by two enders: twelve jobs, one release each', async (t) => {
    const names = Array.from({ length: 12 }, (_, i) => `user${i}`)
    const [observer] = await signedIn(app, 'observer')
    const { tab } = await openTab(await listen(app), observer!.sid!, { tabId: 'O' })
    const clients = await signedIn(app, ...names)
    for (const [i, c] of clients.entries()) t.equal((await c.post('/api/locks', { resource: `doc:${i}` })).statusCode, 201)
    const ids = clients.map((c) => c.sessionId!)
    const before = await jobsOf(workers, 'session-ended', 'completed')

    const winners = await Promise.all(
      clients.map(async (c, i) => {
        if (i < 4) return (await c.post('/api/auth/logout')).statusCode === 204 ? 1 : 0
        if (i < 8) {
          // Two API nodes end the same session at once, for different reasons.
          const [a, b] = await Promise.all([app.ctx.sessions.end([ids[i]!], 'admin', { actorUserId: 1 }), node2.ctx.sessions.end([ids[i]!], 'revoked_by_user')])
          return a.length + b.length
        }
        // A request finds the lifetime over while the workers' sweep may end it too.
        await pastLifetime(app, ids[i]!)
        const answers = await Promise.all([c.get('/api/session_state'), c.get('/api/session_state')])
        const expired = answers.every((r) => r.statusCode === 401 && r.json().error.reason === 'lifetime')
        if (!expired) return -1
        // Whoever won (one of the requests or the sweep), the session ended once.
        const [row] = await sql`select count(*)::int as n from audit_events where session_id = ${ids[i]!} and type = 'session.ended'`
        return row!.n as number
      }),
    )
    t.same(winners, Array(12).fill(1), 'every raced ending had exactly one winner')

    await until('twelve completed session-ended jobs', async () => (await jobsOf(workers, 'session-ended', 'completed')) - before >= 12, 30_000)
    await until('every ending finalized', async () => (await sql`select count(*)::int as n from sessions where id = any(${ids}::uuid[]) and finalized_at is not null`)[0]!.n === 12)
    await sleep(2000) // time for a duplicate to show up, had there been one
    t.equal((await jobsOf(workers, 'session-ended', 'completed')) - before, 12, 'exactly twelve jobs completed, across both processes')
    t.equal(await jobsOf(workers, 'session-ended', 'failed'), 0, 'none failed')
    const perProcess = await Promise.all(workers.map(async (w) => sample(await metricsOf(w), 'tessera_jobs_total', { queue: 'session-ended', result: 'completed' })))
    t.comment(`jobs per process: ${perProcess.join(', ')}`)
    t.same(await sql`select resource from locks where session_id = any(${ids}::uuid[])`, [], 'no lock left')

    for (const [i, id] of ids.entries()) {
      const audit = await sql`select type, data from audit_events where session_id = ${id} and type in ('session.ended', 'locks.released') order by id`
      t.same(
        audit.map((r) => r.type),
        ['session.ended', 'locks.released'],
        `${names[i]}: ended once, released once`,
      )
      const log = await app.resources.redis.xrange(app.ctx.keys.sessionLog(id), '-', '+')
      const terminal = log.filter(([, [, frame]]) => /"type":"session\.(expired|terminated|logged_out)"/.test(frame!))
      t.equal(terminal.length, 1, `${names[i]}: one terminal event`)
      t.equal(tab.messages.filter((m) => m.type === 'locks.released' && m.sessionId === id).length, 1, `${names[i]}: its release announced once`)
    }
  })

  t.test('they stop cleanly', async (t) => {
    for (const w of workers) t.same(await w.stop(), { code: 0, signal: null })
  })
})

t.test('SIGTERM lets a running session-ended job finish before the worker exits (R5)', async (t) => {
  const app = await build(t)
  const [ada] = await signedIn(app, 'ada')
  const id = ada!.sessionId!
  t.equal((await ada!.post('/api/locks', { resource: 'doc' })).statusCode, 201)
  t.equal((await ada!.post('/api/auth/logout')).statusCode, 204, 'ada signs out: her job waits for a worker')
  const sql = app.ctx.database.sql

  // Holding the session row makes the job wait in its follow-up (it writes to that row), in the middle of its work.
  let exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined
  await sql.begin(async (tx) => {
    await tx`select id from sessions where id = ${id} for update`
    const worker = await spawnTessera(t, app, { ROLE: 'worker' })
    await until('the job to be running', async () => (await (await app.ctx.queues.all.sessionEnded.getJob(`ended-${id}`))?.getState()) === 'active')
    await until(
      'the job to wait for the session row',
      async () => (await sql`select 1 from pg_stat_activity where wait_event_type = 'Lock' and query like 'update "sessions"%'`).length > 0,
    )
    exit = worker.stop('SIGTERM')
    await sleep(1000)
    t.equal(worker.child.exitCode, null, 'the worker waits for it')
  })
  t.same(await exit, { code: 0, signal: null }, 'once the job could go on, the worker finished it and exited 0')
  t.equal(await (await app.ctx.queues.all.sessionEnded.getJob(`ended-${id}`))?.getState(), 'completed', 'the job completed')
  t.same(await sql`select resource from locks`, [], 'the lock is released')
  t.ok((await statusOf(app, id)).finalized_at, 'the ending is finalized')
})
