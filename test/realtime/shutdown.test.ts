// SIGTERM to the real service process (quality.md R5): every socket is closed with 1001
// (server going away: reconnect with backoff), new connections are refused, a request in
// flight is answered, and the process exits cleanly within its own 10 s budget. Spawns
// `src/main.ts` as a child, with its own throw-away database and Redis key prefix.
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { connect as tcpConnect, createServer } from 'node:net'
import postgres from 'postgres'
import t from 'tap'
import { dropDatabase, projectRoot } from '../../src/infra/db.js'
import { connectRedis, deleteKeysWithPrefix } from '../../src/infra/redis.js'
import { ADMIN_PASSWORD, testDatabaseUrl, testRedisUrl } from '../helpers/app.js'
import { until } from '../helpers/wait.js'
import { connect } from '../helpers/ws.js'

// The session is bound to a fingerprint of these two headers: the sockets send the same.
const BROWSER = { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Firefox/141.0', 'accept-language': 'en-GB' }
const ORIGIN = 'http://localhost:3000'

/** A port nobody listens on right now (the service cannot report the one PORT=0 picks). */
async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Resolves with the exit code; rejects when the process has not exited within `ms`. */
function exitOf(child: ChildProcess, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the process did not exit within ${ms} ms`)), ms)
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal })
    })
  })
}

/** Whether a new TCP connection to the port is refused (nothing listens there any more). */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(false)
    })
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'))
  })
}

async function waitForHealth(base: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 60_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the service exited with ${child.exitCode} before it was up:\n${output()}`)
    const ok = await fetch(`${base}/healthz`).then(
      (res) => res.ok,
      () => false,
    )
    if (ok) return
    if (Date.now() > deadline) throw new Error(`the service did not answer /healthz within 60 s:\n${output()}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

t.test('SIGTERM closes every socket with 1001, refuses new connections, answers the request in flight and exits 0 within its budget', async (t) => {
  const id = randomBytes(6).toString('hex')
  const databaseUrl = testDatabaseUrl(`tessera_test_${id}`)
  const prefix = `tessera-test:${id}:`
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`

  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: projectRoot(),
    // A clean environment: nothing of the test runner's own (NODE_OPTIONS, TAP_*) leaks in.
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DATABASE_URL: databaseUrl,
      REDIS_URL: testRedisUrl(),
      REDIS_KEY_PREFIX: prefix,
      PORT: String(port),
      HOST: '127.0.0.1',
      PUBLIC_URL: ORIGIN,
      ADMIN_PASSWORD,
      SESSION_SECRET: randomBytes(30).toString('base64url'),
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk))
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await once(child, 'exit')
    }
    await dropDatabase(databaseUrl)
    const redis = await connectRedis(testRedisUrl(), 'tessera-test-cleanup')
    try {
      await deleteKeysWithPrefix(redis, prefix)
    } finally {
      await redis.quit()
    }
  })

  await waitForHealth(base, child, () => output)

  const login = await fetch(`${base}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: ORIGIN, ...BROWSER },
    body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }),
  })
  t.equal(login.status, 200, 'the admin signs in over real HTTP')
  const sid = login.headers
    .getSetCookie()
    .map((c) => /^sid=([^;]*)/.exec(c)?.[1])
    .find(Boolean)
  t.ok(sid, 'and gets a sid cookie')

  const tabs = []
  for (const tabId of ['A', 'B']) {
    const tab = await connect(`127.0.0.1:${port}`, { cookie: `sid=${sid}`, origin: ORIGIN, headers: BROWSER })
    tab.send({ type: 'hello', tabId, view: '/' })
    t.match(await tab.type('welcome', 10_000), { type: 'welcome', tabId }, `tab ${tabId} is welcomed`)
    tabs.push(tab)
  }

  // A request in flight: taking a lock, held up by the test's own lock on the locks table.
  const { csrfToken } = (await login.json()) as { csrfToken: string }
  const sql = postgres(databaseUrl, { max: 2, onnotice: () => {} })
  t.teardown(() => sql.end({ timeout: 1 }))
  const holder = await sql.reserve()
  await holder`begin`
  await holder`lock table locks in exclusive mode`
  let answered = false
  const inFlight = fetch(`${base}/api/locks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: ORIGIN, cookie: `sid=${sid}`, 'x-csrf-token': csrfToken, ...BROWSER },
    body: JSON.stringify({ resource: 'doc' }),
  }).finally(() => (answered = true))
  await until('the request to wait for the locks table', async () => {
    const [row] = await sql`select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and query ilike '%insert into locks%'`
    return row!.n > 0
  })

  // The generous limit of the test; the process's own budget is 10 s (src/main.ts exits 1 past it).
  const exited = exitOf(child, 15_000)
  t.ok(child.kill('SIGTERM'), 'SIGTERM sent')
  for (const [i, tab] of tabs.entries()) t.equal((await tab.closed).code, 1001, `tab ${'AB'[i]} is closed with 1001`)
  await until('new connections to be refused', () => refused(port), 5_000)
  t.pass('a new TCP connection is refused')
  await t.rejects(connect(`127.0.0.1:${port}`, { cookie: `sid=${sid}`, origin: ORIGIN, headers: BROWSER }), { code: 'ECONNREFUSED' }, 'so is a new WebSocket')
  t.notOk(answered, 'while the request in flight is still waiting')
  t.equal(child.exitCode, null, 'and the process waits for it')

  await holder`commit`
  holder.release()
  const res = await inFlight
  t.equal(res.status, 201, 'the request in flight is answered: the lock is taken')
  t.match(await res.json(), { resource: 'doc' })
  const { code, signal } = await exited
  t.same({ code, signal }, { code: 0, signal: null }, `the process exits 0, so within its 10 s budget${code === 0 ? '' : `:\n${output}`}`)
})
