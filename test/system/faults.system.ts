// Fault runs under load (quality.md R1, R3, R4, R5, R7; issue 18). The service as real
// processes — two ROLE=api nodes and a ROLE=worker — on a PostgreSQL and a Redis of the
// test's own (free ports, never the shared servers), with a workload running through each
// fault (load.ts: logins, switches, heartbeats, view changes, locks, failed logins, admin
// terminations, tabs that reconnect), and an accounting afterwards (load.ts, account()):
// nothing a client was told happened may be missing, no 401 without an end reason in
// PostgreSQL, no lock of an ended session or held twice, no gap or duplicate in any tab,
// every session valid before valid after, every alert delivered and acted on once.
//
// `npm run test:system` runs it before the soak. FAULTS=R1,R3 runs some of them; each
// prints its figures and a table of all of them comes at the end.
import { setTimeout as sleep } from 'node:timers/promises'
import postgres from 'postgres'
import t, { type Test } from 'tap'
import { build, PASSWORD, type TestApp } from '../helpers/app.js'
import { privatePostgres } from '../helpers/private-postgres.js'
import { privateRedis } from '../helpers/private-redis.js'
import { spawnTessera, type TesseraProcess } from '../helpers/process.js'
import { sample, until } from '../helpers/wait.js'
import { connect } from '../helpers/ws.js'
import { type Accounting, account, Browser, HEADERS, hungUpgrades, Load, type Node, type Op, Tab, webhookReceiver } from './load.js'

const ONLY = new Set((process.env.FAULTS ?? 'R1,R3,R4,R5,R7').split(',').map((s) => s.trim()))
const THRESHOLD = 2
const ENV = {
  LOGIN_RATE_LIMIT: '1000000/min',
  API_RATE_LIMIT: '1000000/min',
  UUID_RATE_LIMIT: '1000000/min',
  FAILED_LOGIN_THRESHOLD: String(THRESHOLD),
  FAILED_LOGIN_LOCKOUT_SECONDS: '0',
  SESSION_MAX_CONCURRENT_PER_USER: '10000',
  ACTIVITY_FLUSH_INTERVAL_SECONDS: '1',
}

interface Figures {
  fault: string
  ops: number
  during: number
  unavailable: number
  refused: number
  errors: number
  recoveryMs: number
  lost: number
  note: string
}
const table: Figures[] = []

/** Answers the workload may get at any time (401s are checked against PostgreSQL instead). */
function expected(op: Op): boolean {
  if (op.status >= 200 && op.status < 300) return true
  if (op.status === 401) return true
  if (op.kind === 'lock' && op.status === 409) return true
  if (op.kind === 'unlock' && (op.status === 403 || op.status === 404)) return true
  if (op.kind === 'terminate' && (op.status === 404 || op.status === 409)) return true
  return false
}

interface Cluster {
  app: TestApp
  api: TesseraProcess[]
  worker: TesseraProcess
  nodes: Node[]
  hook: Awaited<ReturnType<typeof webhookReceiver>>
  users: { name: string; platformIds: number[] }[]
  victims: string[]
  env: Record<string, string>
  redis: Awaited<ReturnType<typeof privateRedis>>
  pg: Awaited<ReturnType<typeof privatePostgres>>
  /** The test that owns the cluster: a process started again in one run must outlive that run's subtest. */
  owner: Test
}

async function cluster(t: Test): Promise<Cluster> {
  const pg = await privatePostgres(t)
  const redis = await privateRedis(t)
  const hook = await webhookReceiver(t)
  const env = { ...ENV, REDIS_URL: redis.url, ALERT_WEBHOOK_URL: hook.url }
  const app = await build(t, env, { postgres: pg.url })
  const users: Cluster['users'] = []
  for (let i = 0; i < 12; i++) users.push({ name: `u${i}`, platformIds: (await app.user(`u${i}`, { platforms: ['Mastodon', 'Pixelfed', 'Else'] })).platformIds })
  const victims: string[] = []
  for (let i = 0; i < 30; i++) {
    await app.user(`victim${i}`)
    victims.push(`victim${i}`)
  }
  // The in-process app made the database and the users; the processes serve.
  const api = [await spawnTessera(t, app, { ...env, ROLE: 'api' }), await spawnTessera(t, app, { ...env, ROLE: 'api' })]
  const worker = await spawnTessera(t, app, { ...env, ROLE: 'worker' })
  return { app, api, worker, nodes: api.map((p) => ({ url: p.url, up: true })), hook, users, victims, env, redis, pg, owner: t }
}

const readyz = async (url: string) => {
  try {
    return (await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(5000) })).status
  } catch {
    return 0
  }
}

/**
 * Runs the workload, the fault (which resolves once the broken part is back), the
 * recovery, and the accounting; prints the figures and asserts that nothing was lost.
 */
async function faultRun(
  t: Test,
  c: Cluster,
  name: string,
  fault: (load: Load) => Promise<{ note?: string }>,
  opts: { before?: number; perSecond?: number; unavailableAllowed?: boolean; refusedAllowed?: boolean } = {},
) {
  const load = new Load(c.nodes, { users: c.users, victims: c.victims, failedLoginThreshold: THRESHOLD, resources: 30 })
  const hungBefore = hungUpgrades
  await load.signInAdmin()
  const before: Browser[] = []
  for (let i = 0; i < (opts.before ?? 20); i++) {
    const b = await load.login(c.users[i % c.users.length]!.name, 1 + (i % 2))
    if (b) before.push(b)
  }
  for (const b of before.slice(0, 10)) await load.request('lock', b, 'POST', '/api/locks', { resource: `held:${b.sessionId}` })
  load.start(6, opts.perSecond ?? 30)
  await sleep(2000)
  const faultAt = Date.now()
  const { note = '' } = await fault(load)
  const restoredAt = Date.now()
  // Recovered: both nodes ready again, then a while of load with nothing refused.
  await until('every node to be ready', async () => (await Promise.all(c.nodes.filter((n) => n.up).map((n) => readyz(n.url)))).every((s) => s === 200), 60_000)
  await sleep(4000)
  await load.stop()
  // Every tab of a live session is open again.
  const waitsFrom = Date.now()
  const notBack = () => load.tabs().filter((tab) => !tab.done && tab.client === null)
  await until('every tab of a live session to be back', () => notBack().length === 0, 60_000).catch(() => {})
  t.same(
    notBack()
      .slice(0, 5)
      .map((tab) => ({ tab: tab.tabId, closes: tab.closes, attempts: tab.attempts.slice(-3) })),
    [],
    'every tab of a live session is open again',
  )
  await until('every alert to be delivered', async () => {
    const [{ n }] = (await c.app.ctx.database.sql`select count(*)::int as n from alerts where type = 'failed_login_threshold'`) as unknown as [{ n: number }]
    return n === c.hook.seen.size
  }, 90_000).catch(() => {})
  const waitedMs = Date.now() - waitsFrom
  const result = await account(load, c.app.databaseUrl, c.hook, before)

  const bad = load.ops.filter((op) => !expected(op))
  const unavailable = bad.filter((op) => op.status === 503)
  const refused = bad.filter((op) => op.status === 0)
  const lastBad = Math.max(restoredAt, ...bad.map((op) => op.at))
  const recoveryMs = lastBad - restoredAt
  const during = load.ops.filter((op) => op.at >= faultAt && op.at <= lastBad)
  // 503 SERVICE_UNAVAILABLE while the fault lasts is the contract; after the recovery, nothing.
  const errors = bad.filter((op) => !(op.status === 503 && opts.unavailableAllowed !== false) && !(op.status === 0 && opts.refusedAllowed))
  const lostItems = result.lost.length + result.spurious.length + result.locks.length + result.gaps.length + result.invalid.length + result.alerts.length
  const figures: Figures = {
    fault: name,
    ops: load.ops.length,
    during: during.length,
    unavailable: unavailable.length,
    refused: refused.length,
    errors: errors.length,
    recoveryMs,
    lost: lostItems,
    note: `${note}${note ? '; ' : ''}fault lasted ${((restoredAt - faultAt) / 1000).toFixed(1)} s; ${unavailable.length ? `503s: ${[...new Set(unavailable.map((op) => `${op.kind} (${op.detail})`))].join(', ')}; ` : ''}waited ${(waitedMs / 1000).toFixed(0)} s for tabs and alerts; ${hungUpgrades - hungBefore} upgrades unanswered for 10 s (the tab gave up and tried again); ${load.logins.length} logins, ${result.alertCount} alerts (${result.alertRepeats} repeated deliveries, deduplicated by key)`,
  }
  table.push(figures)
  t.comment(JSON.stringify(figures))
  t.same(
    errors.slice(0, 10).map((op) => `${op.kind} ${op.status || op.error}`),
    [],
    `no 5xx other than 503, no unexpected answer (${unavailable.length} × 503 during the fault)`,
  )
  report(t, result)
  for (const p of [...c.api.filter((_, i) => c.nodes[i]!.up), c.worker]) t.equal(p.child.exitCode, null, 'no process crashed')
  return { load, result, faultAt, restoredAt }
}

function report(t: Test, r: Accounting) {
  t.same(r.lost.slice(0, 10), [], 'every login answered 200 has its session and its login record')
  t.same(r.spurious.slice(0, 10), [], 'every 401 is for a session PostgreSQL has ended (no spurious sign-out)')
  t.same(r.locks.slice(0, 10), [], 'every lock owner is a live session, no lock held twice')
  t.same(r.gaps.slice(0, 10), [], 'no tab saw a gap or a duplicate event')
  t.same(r.invalid.slice(0, 10), [], 'every session valid before the fault is valid after it')
  t.same(r.alerts.slice(0, 10), [], 'every alert delivered (acted on once by its delivery id)')
}

const metric = async (url: string, name: string, labels: Record<string, string>) => {
  try {
    return sample(await (await fetch(`${url}/metrics`)).text(), name, labels)
  } catch {
    return -1
  }
}

// Timers of the load's tabs and clients (reconnects against nodes that are gone) can outlive
// the runs and hold the process open until tap's file timeout: once every run has reported,
// the file ends.
t.teardown(() => {
  setTimeout(() => process.exit(), 5000).unref()
})

t.test('fault runs under load', { timeout: 900_000 }, async (t) => {
  const started = Date.now()
  const c = await cluster(t)

  if (ONLY.has('R1'))
    await t.test('R1: Redis killed (SIGKILL) and restarted empty under load', async (t) => {
      let down = 0
      const sweeps = await metric(c.worker.url, 'tessera_jobs_total', { queue: 'idle-sweep', result: 'completed' })
      const { load, faultAt } = await faultRun(t, c, 'R1 Redis SIGKILL, restarted empty', async () => {
        await c.redis.stop()
        await sleep(500)
        down = await readyz(c.nodes[0]!.url)
        await sleep(2500)
        await c.redis.start()
        return { note: `/readyz ${down} while down` }
      })
      t.equal(down, 503, '/readyz answers 503 while Redis is down')
      // Every tab open before the fault and still live was resynced (Redis lost the event logs) or reconnected.
      const live = load.tabs().filter((tab) => !tab.done && tab.client && tab.welcomes[0] && tab.welcomes[0].at < faultAt)
      const notResynced = live.filter((tab) => !tab.resyncs.some((at) => at > faultAt) && !tab.welcomes.some((w) => w.at > faultAt))
      const unavailable = load.tabs().reduce((n, tab) => n + tab.unavailable, 0)
      t.ok(live.length > 0, `${live.length} tabs open before the fault and live after it (${unavailable} SERVICE_UNAVAILABLE answers to tab messages meanwhile)`)
      t.same(
        notResynced.map((tab) => tab.tabId),
        [],
        'every one got a session.state resync or reconnected',
      )
      await until(
        'the repeatable jobs to run again',
        async () => (await metric(c.worker.url, 'tessera_jobs_total', { queue: 'idle-sweep', result: 'completed' })) > sweeps + 2,
        60_000,
      )
      t.pass('BullMQ’s repeatable jobs came back (the idle sweep runs again)')
      t.ok(faultAt > 0)
    })

  if (ONLY.has('R3'))
    await t.test('R3: PostgreSQL killed mid-transaction under load, then restarted', async (t) => {
      await faultRun(t, c, 'R3 PostgreSQL killed (immediate), restarted', async () => {
        // Backends killed under load first (COMMITs among them), then the server itself.
        const admin = postgres(c.pg.url, { max: 1, onnotice: () => {} })
        let killed = 0
        for (let i = 0; i < 20; i++) {
          const rows = await admin`select pg_terminate_backend(pid) as ok from pg_stat_activity
            where application_name like 'tessera-%' and pid <> pg_backend_pid() and random() < 0.5`
          killed += rows.filter((r) => r.ok).length
          await sleep(50)
        }
        await admin.end({ timeout: 1 })
        await c.pg.stop('immediate')
        await sleep(3000)
        await c.pg.start()
        return { note: `${killed} backends terminated before the server was killed` }
      })
    })

  if (ONLY.has('R4'))
    await t.test('R4: the worker killed (SIGKILL) mid-job while alerts and lock releases are queued', async (t) => {
      let endedWithLocks: string[] = []
      const { load } = await faultRun(t, c, 'R4 worker SIGKILL mid-job', async (load) => {
        // A slow receiver keeps deliveries in the worker's hands; sessions holding locks end at once.
        c.hook.slow(4000)
        const holders = load.live().slice(0, 12)
        for (const b of holders) await load.request('lock', b, 'POST', '/api/locks', { resource: `r4:${b.sessionId}` })
        const bursts = Array.from({ length: 8 }, () => load.failedLogins())
        const terminated = await Promise.all(
          holders.map((b) => {
            b.endedByUs = true
            return load.request('terminate', load.admin, 'DELETE', `/admin/sessions/${b.sessionId}`, { reason: 'fault run' })
          }),
        )
        endedWithLocks = holders.filter((_, i) => terminated[i]!.status === 200).map((b) => b.sessionId!)
        await Promise.all(bursts)
        await sleep(1500)
        await c.worker.stop('SIGKILL')
        c.hook.slow(0)
        c.worker = await spawnTessera(c.owner, c.app, { ...c.env, ROLE: 'worker' })
        return { note: `${endedWithLocks.length} sessions holding locks ended, 8 alerts raised, worker killed` }
      })
      const sql = c.app.ctx.database.sql
      await until(
        'every ending finalized',
        async () => (await sql`select count(*)::int as n from sessions where id = any(${endedWithLocks}::uuid[]) and finalized_at is null`)[0]!.n === 0,
        90_000,
      ).catch(async (err) => {
        const rows = await sql`select id, status, end_reason, ended_at, finalized_at from sessions where id = any(${endedWithLocks}::uuid[])`
        t.comment(JSON.stringify(rows))
        t.comment(c.worker.output().split('\n').filter((l) => /"level":[45]0/.test(l)).slice(-20).join('\n'))
        throw err
      })
      // The jobs the dead worker held were retried (BullMQ finds them stalled once their lock lapses) and done.
      const queues = [c.app.ctx.queues.all.alertDelivery, c.app.ctx.queues.all.sessionEnded]
      await until(
        'the killed worker’s jobs to be retried and done',
        async () => {
          for (const q of queues) {
            const n = await q.getJobCounts('active', 'wait', 'delayed', 'prioritized')
            if (Object.values(n).some((v) => v > 0)) return false
          }
          return true
        },
        120_000,
      )
      const [{ n: alerts }] = (await sql`select count(*)::int as n from alerts where type = 'failed_login_threshold'`) as unknown as [{ n: number }]
      const missing = [...Array(alerts).keys()].length - c.hook.seen.size
      const repeats = [...c.hook.seen.values()].reduce((n, v) => n + v - 1, 0)
      t.equal(missing, 0, `every alert delivered after the retries (${alerts} alerts)`)
      t.ok(repeats >= 1, `a delivery the killed worker had in hand was sent again by its retry (${repeats}), and acted on once by its key`)
      const releases = await sql`select session_id, count(*)::int as n from audit_events
        where type = 'locks.released' and session_id = any(${endedWithLocks}::uuid[]) group by session_id`
      t.same(
        releases.filter((r) => r.n !== 1).map((r) => `${r.session_id}: ${r.n}`),
        [],
        'each ended session’s locks released exactly once',
      )
      t.equal(releases.length, endedWithLocks.length, 'every one of them released')
      const [{ n }] = (await sql`select count(*)::int as n from locks where session_id = any(${endedWithLocks}::uuid[])`) as unknown as [{ n: number }]
      t.equal(n, 0, 'no lock of theirs left')
      t.ok(load.ops.length > 0)
    })

  if (ONLY.has('R5'))
    await t.test('R5: SIGTERM of an API node with 1,000 tabs and requests in flight', async (t) => {
      const TABS = 1000
      const load = new Load(c.nodes, { users: c.users, victims: c.victims, failedLoginThreshold: THRESHOLD, resources: 30 })
      await load.signInAdmin()
      // 100 sessions × 10 tabs, every tab on node 0.
      const sessions: Browser[] = []
      for (let i = 0; i < TABS / 10; i++) {
        const b = await load.login(c.users[i % c.users.length]!.name, 0)
        if (b) sessions.push(b)
      }
      const opening: Promise<void>[] = []
      for (const b of sessions)
        for (let k = 0; k < 10; k++) {
          const tab = new Tab(b, `${b.sessionId!.slice(0, 8)}-${k}`)
          b.tabs.push(tab)
          opening.push(tab.open(load, 0, true))
        }
      await Promise.all(opening)
      const onNode0 = load.tabs().filter((tab) => tab.node === 0 && tab.client)
      t.equal(onNode0.length, TABS, `${TABS} tabs on the node to stop`)
      load.start(6, 30)
      await sleep(1000)
      // Requests in flight as the signal lands: logins (slow: a password hash) and switches.
      const stopping = c.api[0]!
      const inflightRequest = (b: Browser, i: number, node: number, id: string) =>
        i % 2
          ? load.request('in-flight login', new Browser(b.username), 'POST', '/api/auth/login', { username: b.username, password: PASSWORD }, node, { 'x-request-id': id })
          : load.request('in-flight switch', b, 'POST', `/api/switch_platform/${c.users.find((u) => u.name === b.username)!.platformIds[1]}`, {}, node, { 'x-request-id': id })
      const inflight = sessions.slice(0, 40).map((b, i) => inflightRequest(b, i, 0, `r5-${i}`))
      await sleep(5)
      const signalAt = Date.now()
      const exit = stopping.stop('SIGTERM')
      await sleep(200)
      const refusedNew = await connect(c.nodes[0]!.url.replace(/^http:\/\//, ''), { headers: HEADERS }).then(
        (tab) => {
          tab.ws.terminate()
          return false
        },
        () => true,
      )
      const answers = await Promise.all(inflight)
      const exited = await exit
      const exitMs = Date.now() - signalAt
      c.nodes[0]!.up = false
      t.ok(refusedNew, 'a new connection to the stopping node is refused')
      t.same(exited, { code: 0, signal: null }, `the node exits 0 (within its own 10 s limit, else it exits 1), after ${exitMs} ms`)
      // What the node took (its log says so, by request id) it answered, and the client got that
      // answer; what it did not take (refused or reset at connect, or Fastify's 503 while closing)
      // the client sends again, to the other node, and it is done there.
      const log = stopping
        .output()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { reqId?: string; msg?: string; res?: { statusCode?: number } })
      const taken = new Set(log.filter((l) => l.msg === 'incoming request').map((l) => l.reqId))
      const completed = new Map(log.filter((l) => l.msg === 'request completed').map((l) => [l.reqId, l.res?.statusCode]))
      const lost: string[] = []
      let retried = 0
      for (const [i, a] of answers.entries()) {
        const id = `r5-${i}`
        if (taken.has(id) && completed.get(id) !== 503) {
          if (a.status !== completed.get(id)) lost.push(`${id}: taken, completed ${completed.get(id)}, the client got ${a.status || a.error}`)
          else if (a.status >= 500) lost.push(`${id}: ${a.status}`)
          continue
        }
        if (a.status >= 200 && a.status < 300) continue
        retried++
        const again = await inflightRequest(sessions[i]!, i, 1, `r5-${i}-again`)
        // A session the workload's admin ended meanwhile: a 401, checked against PostgreSQL with the others.
        if (again.status === 401) continue
        if (again.status < 200 || again.status >= 300) lost.push(`${id}: not taken (${a.status || a.error}), and the retry got ${again.status || again.error}`)
      }
      t.same(
        lost,
        [],
        `no request in flight lost: ${answers.filter((a) => a.status >= 200 && a.status < 300).length} answered 2xx, ${retried} not taken (${JSON.stringify(answers.filter((a) => !(a.status >= 200 && a.status < 300)).map((a) => a.status || a.error))}) and done on the other node`,
      )
      await until('every tab to be back on the other node', () => onNode0.every((tab) => tab.done || (tab.client && tab.node === 1)), 60_000).catch((err) => {
        const out = onNode0.filter((tab) => !(tab.done || (tab.client && tab.node === 1)))
        t.comment(`${out.length} tabs not back: ${JSON.stringify(out.slice(0, 5).map((tab) => ({ id: tab.tabId, closes: tab.closes, welcomes: tab.welcomes, client: !!tab.client, node: tab.node, attempts: tab.attempts })))}`)
        t.fail(String(err))
      })
      await sleep(2000)
      await load.stop()
      const firstCloses = new Map<number, number>()
      for (const tab of onNode0) firstCloses.set(tab.closes[0] ?? 0, (firstCloses.get(tab.closes[0] ?? 0) ?? 0) + 1)
      t.comment(`first close codes: ${JSON.stringify(Object.fromEntries(firstCloses))}`)
      t.comment(`in-flight answers: ${JSON.stringify(answers.map((a) => a.status || a.error))}; 503s: ${JSON.stringify([...new Set(load.ops.filter((op) => op.status === 503).map((op) => `${op.kind}: ${op.detail}`))])}`)
      // A session the workload's admin terminated meanwhile has its tabs closed 4001 instead.
      const stayed = onNode0.filter((tab) => !(tab.browser.endedByUs && tab.closes[0] === 4001))
      const closedGoingAway = stayed.filter((tab) => tab.closes[0] === 1001).length
      t.equal(closedGoingAway, stayed.length, `every tab was closed with 1001 (${onNode0.length - stayed.length} of a session terminated meanwhile: 4001)`)
      // Each resumed on the other node, unless the workload's admin terminated its session meanwhile.
      const notResumed = stayed.filter((tab) => !tab.browser.endedByUs && !(tab.welcomes[1]?.resumed && tab.welcomes[1].node === 1))
      const resumed = stayed.length - notResumed.length
      t.same(
        notResumed.slice(0, 5).map((tab) => ({ tab: tab.tabId, closes: tab.closes, welcomes: tab.welcomes, attempts: tab.attempts })),
        [],
        `and resumed on the other node (${resumed})`,
      )
      const result = await account(load, c.app.databaseUrl, null, sessions)
      report(t, result)
      // The stopping node refuses (no connection, or Fastify's 503 while closing): the client goes to the other one.
      const bad = load.ops.filter((op) => !expected(op) && !(op.node === 0 && (op.status === 0 || op.status === 503)) && !op.kind.startsWith('in-flight'))
      t.same(
        bad.slice(0, 10).map((op) => `${op.kind} ${op.status}`),
        [],
        'no unexpected answer',
      )
      table.push({
        fault: 'R5 SIGTERM of an API node',
        ops: load.ops.length,
        during: load.ops.filter((op) => op.at >= signalAt && op.at <= signalAt + exitMs).length,
        unavailable: load.ops.filter((op) => op.status === 503).length,
        refused: load.ops.filter((op) => op.status === 0).length,
        errors: bad.length + lost.length,
        recoveryMs: exitMs,
        lost: result.lost.length + result.spurious.length + result.locks.length + result.gaps.length + result.invalid.length,
        note: `${TABS} tabs: ${closedGoingAway} closed 1001, ${resumed} resumed on the other node; ${answers.length} requests in flight; exit after ${exitMs} ms`,
      })
      load.closeAll()
      // Back to two nodes for what follows.
      c.api[0] = await spawnTessera(c.owner, c.app, { ...c.env, ROLE: 'api' })
      c.nodes[0] = { url: c.api[0].url, up: true }
      load.nodes[0] = c.nodes[0]
    })

  if (ONLY.has('R7'))
    await t.test('R7: the three races at 10× the spec’s counts, repeated', async (t) => {
      const ROUNDS = Number(process.env.R7_ROUNDS ?? 2)
      const load = new Load(c.nodes, { users: c.users, victims: c.victims, failedLoginThreshold: THRESHOLD, resources: 30 })
      // 500 logins of one user queue for its login lock one after the other: minutes on a loaded machine.
      load.timeoutMs = 300_000
      await load.signInAdmin()
      const sql = c.app.ctx.database.sql
      const racer = await c.app.user('racer', { platforms: Array.from({ length: 20 }, (_, i) => `P${i}`) })
      t.equal(
        (await load.request('settings', load.admin, 'PUT', '/admin/sessions/config', { concurrentLimits: { byUser: { [String(racer.id)]: 1 } } })).status,
        200,
        'the racer may have one session',
      )
      let racesMs = 0
      const driverRaces = () =>
        c.api
          .flatMap((p) => p.output().split('\n'))
          .filter((l) => /"level":50/.test(l) && l.includes('UNSAFE_TRANSACTION')).length
      for (let round = 1; round <= ROUNDS; round++) {
        const began = Date.now()
        const driverRacesBefore = driverRaces()
        // 500 parallel logins of one user whose limit is 1: exactly one active session.
        const logins = await Promise.all(Array.from({ length: 500 }, (_, i) => load.request('race login', new Browser('racer'), 'POST', '/api/auth/login', { username: 'racer', password: PASSWORD }, i)))
        const [{ n: active }] = (await sql`select count(*)::int as n from sessions where user_id = ${racer.id} and status = 'active'`) as unknown as [{ n: number }]
        t.equal(active, 1, `round ${round}: 500 parallel logins (${logins.filter((r) => r.status === 200).length} answered 200): exactly 1 active session`)
        // A login that waited for the user's login lock longer than LOCK_TIMEOUT_MS is refused 503 (try again): never anything else.
        const serverErrors = () =>
          c.api
            .flatMap((p) => p.output().split('\n'))
            .filter((l) => /"level":50/.test(l))
            .slice(-3)
            .map((l) => l.slice(0, 600))
        if (logins.some((r) => r.status >= 500 && r.status !== 503)) t.comment(`server errors: ${serverErrors().join('\n')}`)
        // See docs/reliability.md, R7: with hundreds of transactions queued for its pool,
        // postgres.js 3.4 now and then ran a BEGIN on a connection it had not reserved and
        // refused it (UNSAFE_TRANSACTION), a 500 for that login. Not seen with 4.2; such
        // refusals are still counted from the nodes' logs, reported and allowed; any other 5xx fails.
        const driverRaced = driverRaces() - driverRacesBefore
        if (driverRaced > 0) t.comment(`round ${round}: ${driverRaced} login(s) refused by postgres.js's UNSAFE_TRANSACTION race`)
        const unexpected = logins.filter((r) => r.status !== 200 && r.status !== 503).map((r) => r.status || r.error)
        t.same(
          unexpected.filter((x, i) => !(x === 500 && unexpected.slice(0, i).filter((y) => y === 500).length < driverRaced)),
          [],
          `round ${round}: every login answered 200, the older sessions ended as the limit says (${logins.filter((r) => r.status === 503).length} × 503 after waiting out the lock timeout)`,
        )

        // 200 concurrent switches in 200 tabs (of 20 sessions of one user, on both nodes): every tab ends on the same platform and version.
        const user = c.users[round % c.users.length]!
        const browsers: Browser[] = []
        for (let i = 0; i < 20; i++) {
          const b = await load.login(user.name, 0)
          if (b) browsers.push(b)
        }
          const racing = browsers.slice(0, 1)[0]!
        const tabs = Array.from({ length: 200 }, (_, k) => new Tab(racing, `race${round}-${k}`))
        racing.tabs.push(...tabs)
        await Promise.all(tabs.map((tab, k) => tab.open(load, k)))
        const switches = await Promise.all(tabs.map((_, k) => load.request('race switch', racing, 'POST', `/api/switch_platform/${user.platformIds[k % user.platformIds.length]}`, {}, k)))
        t.same(
          switches.filter((r) => r.status !== 200).map((r) => r.status || r.error),
          [],
          `round ${round}: 200 concurrent switches answered 200`,
        )
        const state = await load.request('race state', racing, 'GET', '/api/session_state')
        const final = { platform: (state.json!.platform as { id: number }).id, version: state.json!.version as number }
        await until(
          'every tab to reach the final version',
          () => tabs.every((tab) => tab.client?.messages.some((m) => m.type === 'platform.switched' && (m.version as number) === final.version)),
          30_000,
        ).catch(() => {})
        const ends = tabs.map((tab) => {
          const last = tab.client?.messages.filter((m) => m.type === 'platform.switched').at(-1)
          return JSON.stringify({ platform: (last?.platform as { id: number } | undefined)?.id, version: last?.version })
        })
        t.same([...new Set(ends)], [JSON.stringify(final)], `round ${round}: all 200 tabs end on platform ${final.platform}, version ${final.version}`)
        t.same(
          tabs.flatMap((tab) => tab.gaps),
          [],
          `round ${round}: no gap or duplicate in any tab`,
        )

        // 1,000 concurrent acquisitions of one lock (by 20 sessions, 50 each, on both nodes): exactly one owner.
        const resource = `race-lock-${round}`
        const acquisitions = await Promise.all(
          Array.from({ length: 1000 }, (_, k) => load.request('race lock', browsers[k % browsers.length]!, 'POST', '/api/locks', { resource }, k)),
        )
        const owners = new Set(acquisitions.filter((r) => r.status === 200 || r.status === 201).map((r) => (r.json!.owner as { sessionId: string }).sessionId))
        const created = acquisitions.filter((r) => r.status === 201).length
        t.same(
          { owners: owners.size, created, other: acquisitions.filter((r) => ![200, 201, 409].includes(r.status)).map((r) => r.status || r.error) },
          { owners: 1, created: 1, other: [] },
          `round ${round}: 1,000 acquisitions: one owner, created once, the rest 409`,
        )
        const [{ n: rows }] = (await sql`select count(*)::int as n from locks where resource = ${resource}`) as unknown as [{ n: number }]
        t.equal(rows, 1, `round ${round}: one lock row`)
        racesMs += Date.now() - began
        for (const tab of tabs) {
          tab.done = true
          tab.client?.ws.close()
        }
      }
      const bad = load.ops.filter((op) => op.status >= 500 || op.status === 0)
      table.push({
        fault: `R7 races ×10, ${ROUNDS} rounds`,
        ops: load.ops.length,
        during: load.ops.length,
        unavailable: bad.filter((op) => op.status === 503).length,
        refused: bad.filter((op) => op.status === 0).length,
        errors: bad.filter((op) => op.status !== 503).length,
        recoveryMs: 0,
        lost: 0,
        note: `500 logins, 200 switches in 200 tabs, 1,000 lock acquisitions per round; ${Math.round(racesMs / 1000)} s`,
      })
      load.closeAll()
    })

  const lines = [
    '| fault | operations | during the fault | 503 | refused (node down) | errors | recovery | items lost | notes |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...table.map(
      (f) =>
        `| ${f.fault} | ${f.ops} | ${f.during} | ${f.unavailable} | ${f.refused} | ${f.errors} | ${(f.recoveryMs / 1000).toFixed(1)} s | ${f.lost} | ${f.note} |`,
    ),
  ]
  console.error(`# fault runs, ${Math.round((Date.now() - started) / 1000)} s in all:\n${lines.join('\n')}`)
  t.comment(`fault runs took ${Math.round((Date.now() - started) / 1000)} s`)
})
