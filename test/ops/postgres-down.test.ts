// PostgreSQL restarted (quality.md R3), on a PostgreSQL of the test's own: while it is down
// /readyz is 503 naming it and routes that need it answer 503 SERVICE_UNAVAILABLE with
// Retry-After (never a 500, never a hang); what Redis serves keeps working; sockets stay open;
// jobs fail and run again. Once it is back everything recovers without a restart, and a login
// or switch that was in flight when it stopped happened wholly or not at all.
import type { LightMyRequestResponse } from 'fastify'
import postgres from 'postgres'
import t, { type Test } from 'tap'
import { ADMIN_PASSWORD, build, PASSWORD, type TestApp } from '../helpers/app.js'
import { type PrivatePostgres, privatePostgres } from '../helpers/private-postgres.js'
import { spawnTessera } from '../helpers/process.js'
import { connect, listen, openTab } from '../helpers/ws.js'
import { sample, until } from '../helpers/wait.js'

/** A request must answer within this long; a hang fails the test instead of the suite timing out. */
const ANSWER_WITHIN_MS = 15_000

async function answered<T>(what: string, request: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ANSWER_WITHIN_MS} ms`)), ANSWER_WITHIN_MS)
  })
  try {
    return await Promise.race([request, hung])
  } finally {
    clearTimeout(timer)
  }
}

function unavailable(t: Test, what: string, res: LightMyRequestResponse) {
  t.equal(res.statusCode, 503, `${what}: 503`)
  t.match(res.json(), { error: { code: 'SERVICE_UNAVAILABLE', message: /database/i } }, `${what}: the contract's error, naming the database`)
  t.ok(Number(res.headers['retry-after']) > 0, `${what}: with Retry-After`)
}

/** A connection of the test's own to the app's database on the private server. */
function direct(t: Test, app: TestApp) {
  const sql = postgres(app.databaseUrl, { max: 2, onnotice: () => {}, connect_timeout: 5 })
  t.teardown(() => sql.end({ timeout: 1 }).catch(() => {}))
  return sql
}

const ready = async (app: TestApp) => (await app.app.inject({ method: 'GET', url: '/readyz' })).statusCode === 200

/**
 * Every session in PostgreSQL has its login record and its audit event; every record the
 * token cache holds in Redis is of a session PostgreSQL has and says what PostgreSQL says of
 * it; and the sessions in `cached` (those that made a request) are in the cache.
 */
async function consistent(t: Test, app: TestApp, sql: postgres.Sql, cached: string[]) {
  const rows = await sql`select s.id, s.status, s.version, s.active_platform_id, s.token_hash,
      (select count(*)::int from login_attempts a where a.session_id = s.id and a.success) as logins,
      (select count(*)::int from audit_events e where e.session_id = s.id and e.type = 'session.login') as audits
    from sessions s`
  for (const r of rows) t.same({ logins: r.logins, audits: r.audits }, { logins: 1, audits: 1 }, `session ${r.id}: its login record and audit event`)
  const byId = new Map(rows.map((r) => [r.id as string, r]))
  for (const id of cached) {
    const row = byId.get(id)
    t.ok(row, `session ${id} is in PostgreSQL`)
    const record = JSON.parse((await app.ctx.redis.get(app.ctx.keys.sessionByToken(row!.token_hash as string))) ?? 'null') as { id: string; status: string } | null
    t.same(record && { id: record.id, status: record.status }, { id, status: row!.status }, `the token cache holds session ${id} as PostgreSQL has it`)
  }
  const keys = await app.ctx.redis.keys(`${app.prefix}tok:*`)
  t.ok(keys.length >= cached.length, `${keys.length} cached records`)
  for (const key of keys) {
    const record = JSON.parse((await app.ctx.redis.get(key)) ?? 'null') as { id: string; status: string } | null
    if (!record) continue // expired between KEYS and GET
    t.equal(record.status, byId.get(record.id)?.status, `the cached record of ${record.id} matches PostgreSQL`)
  }
  return rows
}

t.test('with PostgreSQL stopped: 503s with Retry-After, Redis-served checks work, sockets stay open, jobs fail and retry; then recovery', async (t) => {
  const pg = await privatePostgres(t)
  const app = await build(t, { ACTIVITY_FLUSH_INTERVAL_SECONDS: '1' }, { postgres: pg.url, workers: true })
  const sql = direct(t, app)
  const { platformIds } = await app.user('ada', { platforms: ['One', 'Two'] })
  const ada = await app.client().signIn('ada')
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  // Each has made a request, so Redis holds its session record.
  t.equal((await ada.get('/api/session_state')).statusCode, 200)
  t.equal((await admin.get('/admin/sessions')).statusCode, 200)
  const address = await listen(app)
  const { tab } = await openTab(address, ada.sid!, { tabId: 'A' })
  let tabClosed: { code: number } | null = null
  void tab.closed.then((c) => (tabClosed = c))
  const [before] = await sql`select last_activity from sessions where id = ${ada.sessionId!}`
  const metrics = async () => (await app.app.inject({ method: 'GET', url: '/metrics' })).body
  const flushFailuresBefore = sample(await metrics(), 'tessera_jobs_total', { queue: 'activity-flush', result: 'failed' })
  await sql.end()

  await pg.stop('fast')

  const readyz = await answered('/readyz', app.app.inject({ method: 'GET', url: '/readyz' }))
  t.equal(readyz.statusCode, 503)
  t.equal(readyz.json().status, 'unavailable')
  t.equal(readyz.json().checks.postgres.ok, false, 'the failing check is named')
  t.type(readyz.json().checks.postgres.error, 'string')
  t.equal(readyz.json().checks.redis.ok, true, 'Redis is fine')
  t.equal((await answered('/healthz', app.app.inject({ method: 'GET', url: '/healthz' }))).statusCode, 200, 'the process is up')

  // Before any switch is tried: a switch, even a refused one, takes the cached platform state back.
  const cachedState = await answered('session_state', ada.get('/api/session_state'))
  t.equal(cachedState.statusCode, 200, 'session_state is answered from Redis (its platform state was cached before)')
  t.same({ platform: cachedState.json().platform?.id, version: cachedState.json().version }, { platform: platformIds[0], version: 1 }, 'with the state from before the outage')

  const needDatabase: [string, () => Promise<LightMyRequestResponse>][] = [
    ['login', () => app.client().login('ada')],
    ['the session list', () => ada.get('/api/sessions')],
    ['the platform list', () => ada.get('/api/platforms')],
    ['a platform switch', () => ada.post(`/api/switch_platform/${platformIds[1]}`)],
    ['a lock', () => ada.post('/api/locks', { resource: 'doc-1' })],
    ['logout', () => ada.post('/api/auth/logout')],
    ['admin sessions', () => admin.get('/admin/sessions')],
    ['admin history', () => admin.get('/admin/sessions/history')],
    ['admin users', () => admin.get('/admin/users')],
    ['admin audit', () => admin.get('/admin/audit')],
    // Every admin route: the admin check reads the role from PostgreSQL (issue 12, defect 11).
    ['admin settings', () => admin.get('/admin/sessions/config')],
  ]
  for (const [what, request] of needDatabase) unavailable(t, what, await answered(what, request()))

  // What Redis serves: the session record (cached), its activity, with the settings last read.
  const validate = await answered('validate', ada.post('/api/session/validate'))
  t.equal(validate.statusCode, 200, 'validate is answered from Redis')
  t.equal(validate.json().valid, true)
  t.equal((await answered('/metrics', app.app.inject({ method: 'GET', url: '/metrics' }))).statusCode, 200, '/metrics still answers')

  // The socket stays open: input is recorded in Redis; a view change (audited in PostgreSQL) is refused with an error frame.
  const inputAt = Date.now()
  tab.send({ type: 'activity', at: inputAt })
  tab.send({ type: 'view', view: '/elsewhere' })
  const refused = await tab.next((m) => m.type === 'error')
  t.equal(refused.code, 'SERVICE_UNAVAILABLE', 'the tab is told why its message was dropped')
  tab.send({ type: 'ping', id: 1 })
  await tab.next((m) => m.type === 'pong' && m.id === 1)
  t.equal(tabClosed, null, 'the socket is open')
  // A tab that connects now cannot finish its hello (it records the view in PostgreSQL).
  const late = await connect(address, { cookie: `sid=${ada.sid}` })
  late.send({ type: 'hello', tabId: 'B', view: '/' })
  t.equal((await late.closed).code, 1011, 'a tab that connects now is closed with 1011 after hello (it reconnects with backoff)')
  t.notOk(late.messages.some((m) => m.type === 'welcome'), 'without a welcome')
  const tabsKey = app.ctx.keys.sessionTabs(ada.sessionId!)
  await until('the late tab to leave presence again', async () => (await app.resources.redis.zcard(tabsKey)) === 1)

  // The workers keep running: the write-behind of that input fails (and keeps it for later), the process lives on.
  await until('an activity flush to fail', async () => sample(await metrics(), 'tessera_jobs_total', { queue: 'activity-flush', result: 'failed' }) > flushFailuresBefore, 30_000)
  t.equal((await app.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200)

  await pg.start()

  await until('/readyz to be 200 again', () => ready(app), 30_000)
  const again = await until('a login to work again', async () => {
    const c = app.client()
    return (await c.login('ada')).statusCode === 200 && c
  }, 30_000)
  t.ok(again.sessionId, 'a new session')
  const state = await ada.get('/api/session_state')
  t.equal(state.statusCode, 200, 'the session made before the outage is still valid')
  t.equal(state.json().platform.id, platformIds[0], 'on the platform it had: the refused switch did nothing')
  t.equal(state.json().version, 1)
  const sqlAfter = direct(t, app)
  await until('the input made during the outage to reach PostgreSQL', async () => {
    const [row] = await sqlAfter`select last_activity from sessions where id = ${ada.sessionId!}`
    return (row!.last_activity as Date).getTime() >= Math.floor(inputAt / 1000) * 1000 && (row!.last_activity as Date) > (before!.last_activity as Date)
  }, 30_000)
  tab.send({ type: 'ping', id: 2 })
  await tab.next((m) => m.type === 'pong' && m.id === 2)
  t.equal(tabClosed, null, 'the socket never closed')
  const switched = await ada.post(`/api/switch_platform/${platformIds[1]}`)
  t.equal(switched.statusCode, 200, 'switching works again')
  await tab.next((m) => m.type === 'platform.switched')
  t.equal((await admin.get('/admin/sessions')).statusCode, 200, 'and the admin lists')
  await consistent(t, app, sqlAfter, [ada.sessionId!, admin.sessionId!])
})

/**
 * Starts a request that will wait on `table`, and waits until it does. The lock is held by a
 * prepared transaction, which outlives every backend: when PostgreSQL stops, the request's
 * backend is ended while it still waits. (Held by an open transaction, the lock could be freed
 * by its own backend's exit first, and the request commit before its backend heard of the stop.)
 */
async function stuckOn(t: Test, app: TestApp, table: string, start: () => Promise<LightMyRequestResponse>) {
  const sql = direct(t, app)
  const holder = await sql.reserve()
  await holder`begin`
  await holder.unsafe(`lock table ${table} in exclusive mode`)
  await holder.unsafe(`prepare transaction '${HOLDER}'`)
  holder.release()
  const pending = start()
  pending.catch(() => {})
  await until(`the request to wait for ${table}`, async () => {
    const [row] = await sql`select count(*)::int as n from pg_stat_activity
      where wait_event_type = 'Lock' and query ilike ${`%${table}%`} and pid <> pg_backend_pid()`
    return row!.n > 0
  })
  return { pending }
}

/** The prepared transaction stuckOn holds its lock with. */
const HOLDER = 'tessera-test-holder'

async function restarted(t: Test, pg: PrivatePostgres, app: TestApp, mode: 'fast' | 'immediate', pending: Promise<LightMyRequestResponse>) {
  await pg.stop(mode)
  const res = await answered('the request in flight', pending)
  unavailable(t, 'the request in flight', res)
  await pg.start()
  const sql = direct(t, app)
  await sql.unsafe(`rollback prepared '${HOLDER}'`)
  await sql.end()
  await until('/readyz to be 200 again', () => ready(app), 30_000)
  return res
}

for (const mode of ['fast', 'immediate'] as const) {
  t.test(`a login in flight when PostgreSQL stops (${mode}) leaves no half-written session`, async (t) => {
    const pg = await privatePostgres(t)
    const app = await build(t, {}, { postgres: pg.url })
    await app.user('ada', { platforms: ['One'] })
    const first = await app.client().signIn('ada') // one whole session before
    t.equal((await first.get('/api/session_state')).statusCode, 200, 'which has made a request: it is in the token cache')
    // The login's history row is the write it waits on: the session row is written before it.
    const { pending } = await stuckOn(t, app, 'login_attempts', () => app.client().login('ada'))
    await restarted(t, pg, app, mode, pending)

    const sql = direct(t, app)
    const rows = await consistent(t, app, sql, [first.sessionId!])
    t.equal(rows.length, 1, 'the login that failed left no session behind')
    const [{ n }] = (await sql`select count(*)::int as n from audit_events where type = 'session.login'`) as unknown as [{ n: number }]
    t.equal(n, 1, 'nor an audit event')
    const ada = await app.client().signIn('ada')
    t.equal((await ada.get('/api/session_state')).statusCode, 200, 'signing in works again')
    t.equal((await consistent(t, app, sql, [first.sessionId!, ada.sessionId!])).length, 2)
  })

  t.test(`a platform switch in flight when PostgreSQL stops (${mode}) happens wholly or not at all`, async (t) => {
    const pg = await privatePostgres(t)
    const app = await build(t, {}, { postgres: pg.url })
    const { platformIds } = await app.user('ada', { platforms: ['One', 'Two'] })
    const ada = await app.client().signIn('ada')
    const { tab } = await openTab(await listen(app), ada.sid!, { tabId: 'A' })
    const sql = direct(t, app)
    const [{ n: auditsBefore }] = (await sql`select count(*)::int as n from audit_events where type = 'platform.switched'`) as unknown as [{ n: number }]
    t.equal(auditsBefore, 0)
    // The switch's audit event is the write it waits on: the version bump is written before it.
    const { pending } = await stuckOn(t, app, 'audit_events', () => ada.post(`/api/switch_platform/${platformIds[1]}`, undefined, { 'x-tab-id': 'A' }))
    await restarted(t, pg, app, mode, pending)

    const after = direct(t, app)
    const [row] = await after`select active_platform_id, version from sessions where id = ${ada.sessionId!}`
    const [{ n: audits }] = (await after`select count(*)::int as n from audit_events where type = 'platform.switched'`) as unknown as [{ n: number }]
    t.same({ platform: row!.active_platform_id, version: row!.version, audits }, { platform: platformIds[0], version: 1, audits: 0 }, 'no version bump, no platform change, no audit event')
    const state = (await ada.get('/api/session_state')).json()
    t.same({ platform: state.platform.id, version: state.version }, { platform: platformIds[0], version: 1 }, 'session_state says the same')
    t.notOk(tab.messages.some((m) => m.type === 'platform.switched'), 'the tab heard of no switch')

    const res = await ada.post(`/api/switch_platform/${platformIds[1]}`)
    t.equal(res.statusCode, 200, 'the same switch works now')
    t.equal(res.json().version, 2)
    await tab.next((m) => m.type === 'platform.switched' && m.version === 2)
    const [{ n: auditsAfter }] = (await after`select count(*)::int as n from audit_events where type = 'platform.switched'`) as unknown as [{ n: number }]
    t.equal(auditsAfter, 1, 'with its audit event')
    await consistent(t, app, after, [ada.sessionId!])
  })
}

t.test('a Tessera process (ROLE=all) survives PostgreSQL killed and started again, without a restart', async (t) => {
  const pg = await privatePostgres(t)
  const app = await build(t, {}, { postgres: pg.url })
  await app.user('ada')
  const proc = await spawnTessera(t, app, { ROLE: 'all', ACTIVITY_FLUSH_INTERVAL_SECONDS: '1' })
  const login = (cookie?: string) =>
    fetch(`${proc.url}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(cookie ? { cookie } : {}) },
      body: JSON.stringify({ username: 'ada', password: PASSWORD }),
      signal: AbortSignal.timeout(ANSWER_WITHIN_MS),
    })
  const first = await login()
  t.equal(first.status, 200)
  const cookie = first.headers.get('set-cookie')!.split(';')[0]!
  const get = (path: string) => fetch(`${proc.url}${path}`, { headers: { cookie }, signal: AbortSignal.timeout(ANSWER_WITHIN_MS) })
  t.equal((await get('/api/session_state')).status, 200)

  await pg.stop('immediate')
  t.equal((await get('/readyz')).status, 503)
  const refused = await login()
  t.equal(refused.status, 503, 'login: 503')
  t.ok(Number(refused.headers.get('retry-after')) > 0, 'with Retry-After')
  t.equal(((await refused.json()) as { error: { code: string } }).error.code, 'SERVICE_UNAVAILABLE')
  // Let the workers run (and fail) a few ticks while it is away.
  await until('the workers to have failed a few jobs', async () => sample(await (await get('/metrics')).text(), 'tessera_jobs_total', { queue: 'idle-sweep', result: 'failed' }) >= 3, 30_000)
  t.equal((await get('/healthz')).status, 200)
  t.equal(proc.child.exitCode, null, 'the process is still running')

  await pg.start()
  await until('/readyz to be 200 again', async () => (await get('/readyz')).status === 200, 30_000)
  await until('a login to work again', async () => (await login()).status === 200, 30_000)
  t.equal((await get('/api/session_state')).status, 200, 'the session from before is valid')
  t.equal(proc.child.exitCode, null, 'never restarted')
  t.notMatch(proc.output(), /"level":(50|60)/, 'no error logged (a 500 or a crash)')
  t.notOk(proc.output().includes(PASSWORD), 'no password in the logs')
  t.match(proc.output(), /The database is unavailable/, 'the 503s are logged')
  t.notMatch(proc.output(), /params: /, 'without the parameters of the failed query')
})

t.test('a session-ended job running when PostgreSQL stops fails, is retried and finishes once it is back', async (t) => {
  const pg = await privatePostgres(t)
  let stopped: () => void = () => {}
  const outage = new Promise<void>((resolve) => (stopped = resolve))
  let held = false
  const app = await build(t, {}, {
    postgres: pg.url,
    workers: {
      // The first attempt stops halfway (its locks released, not yet announced) until PostgreSQL is down.
      afterRelease: async () => {
        if (held) return
        held = true
        await outage
      },
    },
  })
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  t.equal((await ada.post('/api/locks', { resource: 'doc-1' })).statusCode, 201)
  t.equal((await ada.post('/api/auth/logout')).statusCode, 204)
  await until('the job to be halfway', () => held)
  await pg.stop('immediate')
  stopped()
  const jobs = async (result: string) => sample((await app.app.inject({ method: 'GET', url: '/metrics' })).body, 'tessera_jobs_total', { queue: 'session-ended', result })
  await until('an attempt to fail and be retried', async () => (await jobs('retried')) >= 1, 30_000)
  await pg.start()

  const sql = direct(t, app)
  await until('the job to finish', async () => {
    const [row] = await sql`select finalized_at from sessions where id = ${ada.sessionId!}`
    return row!.finalized_at !== null
  }, 60_000)
  const [{ n }] = (await sql`select count(*)::int as n from locks`) as unknown as [{ n: number }]
  t.equal(n, 0, 'its lock is released')
  t.equal(await jobs('failed'), 0, 'no job failed for good')
  t.ok((await jobs('completed')) >= 1, 'it completed')
})

t.test('a transaction failing with a connection error that is not its own is rolled back as usual', async (t) => {
  const app = await build(t)
  const { sql } = app.ctx.database
  await sql`create table scratch (id int)`
  // As if Redis had reset its connection in the middle of a transaction: PostgreSQL's is fine.
  const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })
  const failed = sql.begin(async (tx) => {
    await tx`insert into scratch values (1)`
    throw reset
  })
  t.equal(await answered('the transaction', failed.catch((err) => err)), reset, 'it fails with its own error')
  const [{ n }] = (await sql`select count(*)::int as n from scratch`) as unknown as [{ n: number }]
  t.equal(n, 0, 'rolled back')
  t.equal((await sql.begin((tx) => tx`insert into scratch values (2) returning id`))[0]!.id, 2, 'and the pool goes on')
})
