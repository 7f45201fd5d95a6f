// Configuration: defaults, one-line errors for bad values, and what the process prints
// when a value is bad or PostgreSQL or Redis cannot be reached.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { ConfigError, configVariables, loadConfig } from '../../src/config.js'
import { dropDatabase } from '../../src/infra/db.js'
import { testDatabaseUrl, testRedisUrl } from '../helpers/app.js'
import { privateRedis } from '../helpers/private-redis.js'

const root = fileURLToPath(new URL('../..', import.meta.url))

t.test('with nothing set, every default of config.md applies', async (t) => {
  const c = loadConfig({})
  t.match(c, {
    role: 'all',
    production: false,
    host: '127.0.0.1',
    port: 3000,
    workerPort: 3001,
    publicUrl: 'http://localhost:3000',
    allowedOrigins: ['http://localhost:3000'],
    databaseUrl: 'postgres://localhost:5432/tessera',
    databasePoolMax: 10,
    redisUrl: 'redis://127.0.0.1:6379',
    redisClusterNodes: null,
    redisKeyPrefix: 'tessera:',
    sessionSecret: undefined,
    cookieSecure: false,
    heartbeatIntervalSeconds: 30,
    syncCheckIntervalSeconds: 2,
    fingerprinting: true,
    auditLogging: true,
    cleanupIntervalSeconds: 1800,
    cleanupBatchSize: 100,
    activityFlushIntervalSeconds: 10,
    rateLimits: { login: { max: 20, windowMs: 60_000 }, uuid: { max: 10, windowMs: 60_000 }, api: { max: 600, windowMs: 60_000 } },
    ws: { maxPayloadBytes: 16384, maxBadMessages: 10, pingIntervalSeconds: 10, maxBufferedBytes: 1048576 },
    eventLog: { max: 1000, ttlSeconds: 600 },
    adminFeedIntervalMs: 250,
    realtimeTicketSeconds: 30,
    retention: { auditDays: 90, loginHistoryDays: 180 },
    uploads: { dir: './data/uploads', maxBytes: 5242880 },
    bootstrapAdmin: { username: 'admin', password: undefined },
    metricsToken: undefined,
    logLevel: 'info',
  })
  t.same(c.initialSettings, {
    idleAfterSeconds: 900,
    idleTimeoutSeconds: 7200,
    lifetimeSeconds: 172800,
    idleWarningSeconds: 60,
    concurrentLimits: { byRole: {}, byUser: {}, default: 5 },
    limitPolicy: 'terminate_oldest',
    failedLogin: { threshold: 5, windowSeconds: 900, lockoutEnabled: true, lockoutSeconds: 900, byUser: {} },
    anomaly: { distinctIps: 3, windowHours: 24 },
  })
})

t.test('an empty value counts as unset', async (t) => {
  t.equal(loadConfig({ PORT: '', SESSION_LIMIT_POLICY: '' }).port, 3000)
})

t.test('every declared default is itself a valid value', async (t) => {
  for (const v of configVariables) {
    if (v.default !== undefined) t.doesNotThrow(() => v.parse(v.default!), v.env)
  }
})

t.test('values are parsed into their types', async (t) => {
  const c = loadConfig({
    PORT: '8080',
    ROLE: 'worker',
    LOGIN_RATE_LIMIT: '5/s',
    API_RATE_LIMIT: '100/hour',
    SESSION_ENABLE_FINGERPRINTING: 'false',
    FAILED_LOGIN_LOCKOUT_SECONDS: '0',
    ALLOWED_ORIGINS: 'https://a.example, https://b.example/path',
    PUBLIC_URL: 'https://tessera.example/app',
  })
  t.equal(c.port, 8080)
  t.equal(c.role, 'worker')
  t.same(c.rateLimits.login, { max: 5, windowMs: 1000 })
  t.same(c.rateLimits.api, { max: 100, windowMs: 3_600_000 })
  t.equal(c.fingerprinting, false)
  t.equal(c.initialSettings.failedLogin.lockoutEnabled, false)
  t.same(c.allowedOrigins, ['https://tessera.example', 'https://a.example', 'https://b.example'])
})

t.test('production needs SESSION_SECRET and turns on Secure cookies', async (t) => {
  const secret = 'x'.repeat(32)
  const c = loadConfig({ NODE_ENV: 'production', SESSION_SECRET: secret })
  t.equal(c.production, true)
  t.equal(c.cookieSecure, true)
  t.equal(loadConfig({ NODE_ENV: 'production', SESSION_SECRET: secret, COOKIE_SECURE: 'false' }).cookieSecure, false)
})

/** Throws a ConfigError whose message is one line and mentions every `parts`. */
function refuses(t: Test, env: Record<string, string>, parts: (string | RegExp)[]) {
  let err: unknown
  try {
    loadConfig(env)
  } catch (e) {
    err = e
  }
  t.type(err, ConfigError, `${JSON.stringify(env)} is refused with a ConfigError`)
  const message = (err as Error | undefined)?.message ?? ''
  t.notMatch(message, /\n/, 'on one line')
  for (const part of parts) t.match(message, part)
  return message
}

t.test('REDIS_CLUSTER_NODES: unset runs on REDIS_URL; set, the seeds of a Redis Cluster', async (t) => {
  t.equal(loadConfig({}).redisClusterNodes, null)
  t.same(loadConfig({ REDIS_CLUSTER_NODES: ' 10.0.0.1:7000, redis-b:7001 ,' }).redisClusterNodes, ['10.0.0.1:7000', 'redis-b:7001'])
})

t.test('a bad value names the variable, the value and what is allowed', async (t) => {
  refuses(t, { PORT: 'abc' }, ['PORT', '"abc"', 'an integer from 0 to 65535'])
  refuses(t, { PORT: '70000' }, ['PORT', '"70000"', 'an integer from 0 to 65535'])
  refuses(t, { SESSION_LIMIT_POLICY: 'nope' }, ['SESSION_LIMIT_POLICY', '"nope"', 'one of terminate_oldest, block_new'])
  refuses(t, { LOGIN_RATE_LIMIT: 'fast' }, ['LOGIN_RATE_LIMIT', '"fast"', 'a rate such as 20/min'])
  refuses(t, { DATABASE_URL: 'mysql://x' }, ['DATABASE_URL', '"mysql://x"', 'postgres://', 'postgresql://'])
  refuses(t, { REDIS_URL: 'http://x' }, ['REDIS_URL', '"http://x"', 'redis://'])
  refuses(t, { REDIS_CLUSTER_NODES: '10.0.0.1' }, ['REDIS_CLUSTER_NODES', '"10.0.0.1"', 'host:port seeds'])
  refuses(t, { REDIS_CLUSTER_NODES: 'a:7000,b:99999' }, ['REDIS_CLUSTER_NODES', 'host:port seeds'])
  refuses(t, { ROLE: 'web' }, ['ROLE', '"web"', 'one of api, worker, all'])
  refuses(t, { SESSION_ENABLE_FINGERPRINTING: 'yes' }, ['SESSION_ENABLE_FINGERPRINTING', '"yes"', 'true or false'])
  refuses(t, { ALLOWED_ORIGINS: 'https://ok.example,ftp://no' }, ['ALLOWED_ORIGINS', '"ftp://no"', 'http(s) origins'])
  refuses(t, { LOG_LEVEL: 'loud' }, ['LOG_LEVEL', '"loud"', 'one of fatal, error'])
})

t.test('NODE_ENV=production without SESSION_SECRET is refused', async (t) => {
  refuses(t, { NODE_ENV: 'production' }, ['SESSION_SECRET', 'NODE_ENV=production', 'at least 32 characters'])
})

t.test('a short SESSION_SECRET is refused without echoing it', async (t) => {
  const message = refuses(t, { SESSION_SECRET: 'short-secret' }, ['SESSION_SECRET', 'at least 32 characters'])
  t.notMatch(message, 'short-secret')
})

t.test('SESSION_IDLE_TIMEOUT_SECONDS must exceed SESSION_IDLE_AFTER_SECONDS', async (t) => {
  refuses(t, { SESSION_IDLE_AFTER_SECONDS: '600', SESSION_IDLE_TIMEOUT_SECONDS: '600' }, ['SESSION_IDLE_TIMEOUT_SECONDS', '"600"', 'SESSION_IDLE_AFTER_SECONDS (600)'])
  refuses(t, { SESSION_IDLE_TIMEOUT_SECONDS: '300' }, ['SESSION_IDLE_TIMEOUT_SECONDS', '"300"', 'more than SESSION_IDLE_AFTER_SECONDS (900)'])
})

// ---- the process: `node src/main.ts` with a bad value or a missing dependency ----

async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Runs the service's entry point with only `env` for configuration; resolves when it exits. */
function start(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const base: Record<string, string | undefined> = { ...process.env }
  for (const v of configVariables) delete base[v.env]
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: root,
      env: { ...base, LOG_LEVEL: 'silent', REDIS_KEY_PREFIX: `tessera-test:${randomBytes(6).toString('hex')}:`, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    // A service that started after all must not outlive the test.
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

function oneLine(t: Test, stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l !== '')
  t.equal(lines.length, 1, `stderr is one line: ${JSON.stringify(stderr)}`)
  t.ok(stderr.endsWith('\n'), 'ending with a newline')
  return lines[0] ?? ''
}

// Each start takes a few seconds (tsx compiles on the fly), so they run side by side.
t.test('the service process refuses to start', async (t) => {
  t.jobs = 4

  t.test('PostgreSQL not reachable: one line naming it, its URL and how to start it; exit non-zero', { buffered: true }, async (t) => {
    const url = `postgres://127.0.0.1:${await closedPort()}/tessera`
    const r = await start({ DATABASE_URL: url, REDIS_URL: testRedisUrl() })
    t.not(r.code, 0)
    const line = oneLine(t, r.stderr)
    t.match(line, 'PostgreSQL')
    t.match(line, url)
    t.match(line, 'docker compose -f compose.dev.yaml up -d postgres')
  })

  t.test('Redis not reachable: one line naming it, its URL and how to start it; exit non-zero', { buffered: true }, async (t) => {
    const databaseUrl = testDatabaseUrl(`tessera_test_${randomBytes(6).toString('hex')}`)
    t.teardown(() => dropDatabase(databaseUrl))
    const url = `redis://127.0.0.1:${await closedPort()}`
    const r = await start({ DATABASE_URL: databaseUrl, REDIS_URL: url, ADMIN_PASSWORD: 'admin-password-1' })
    t.not(r.code, 0)
    const line = oneLine(t, r.stderr)
    t.match(line, 'Redis')
    t.match(line, url)
    t.match(line, 'docker compose -f compose.dev.yaml up -d redis')
  })

  // Any refusal at start-up, not only an unreachable service, is one line and a hint.
  const noStack = (t: Test, stderr: string) => t.notMatch(stderr, /\n\s+at /, 'no stack trace')

  t.test('a PostgreSQL role that does not exist: one line naming the URL and how to fix it', { buffered: true }, async (t) => {
    const role = `nobody_${randomBytes(4).toString('hex')}`
    const url = `postgres://${role}@127.0.0.1:5432/tessera_never_created`
    const r = await start({ DATABASE_URL: url, REDIS_URL: testRedisUrl() })
    t.not(r.code, 0)
    noStack(t, r.stderr)
    const line = oneLine(t, r.stderr)
    t.match(line, `PostgreSQL at ${url} refused: role "${role}" does not exist`)
    t.match(line, `createuser --createdb ${role}`)
    t.match(line, 'DATABASE_URL')
  })

  const withDatabase = (t: Test) => {
    const databaseUrl = testDatabaseUrl(`tessera_test_${randomBytes(6).toString('hex')}`)
    t.teardown(() => dropDatabase(databaseUrl))
    return { DATABASE_URL: databaseUrl, ADMIN_PASSWORD: 'admin-password-1' }
  }

  t.test('a wrong Redis password: one line, the password hidden', { buffered: true }, async (t) => {
    const redis = await privateRedis(t, { password: 'the-right-one' })
    const r = await start({ ...withDatabase(t), REDIS_URL: `redis://:not-the-right-one@127.0.0.1:${redis.port}` })
    t.not(r.code, 0)
    noStack(t, r.stderr)
    const line = oneLine(t, r.stderr)
    t.match(line, `Redis at redis://:***@127.0.0.1:${redis.port}`)
    t.match(line, 'WRONGPASS')
    t.match(line, 'REDIS_URL')
    t.notMatch(line, 'not-the-right-one')
  })

  t.test('a Redis that needs a password none was given for: one line saying so', { buffered: true }, async (t) => {
    const redis = await privateRedis(t, { password: 'the-right-one' })
    const r = await start({ ...withDatabase(t), REDIS_URL: `redis://127.0.0.1:${redis.port}` })
    t.not(r.code, 0)
    noStack(t, r.stderr)
    const line = oneLine(t, r.stderr)
    t.match(line, `Redis at redis://127.0.0.1:${redis.port}`)
    t.match(line, 'requires a password')
  })

  t.test('a bad configuration value: one line, exit non-zero, before connecting anywhere', { buffered: true }, async (t) => {
    const r = await start({ SESSION_LIMIT_POLICY: 'nope', DATABASE_URL: `postgres://127.0.0.1:${await closedPort()}/tessera` })
    t.not(r.code, 0)
    const line = oneLine(t, r.stderr)
    t.match(line, 'SESSION_LIMIT_POLICY="nope" is not valid: expected one of terminate_oldest, block_new')
    t.notMatch(line, 'PostgreSQL')
  })

  t.test('a bad value in production is still one line (SESSION_SECRET missing)', { buffered: true }, async (t) => {
    const r = await start({ NODE_ENV: 'production', DATABASE_URL: `postgres://127.0.0.1:${await closedPort()}/tessera` })
    t.not(r.code, 0)
    t.match(oneLine(t, r.stderr), 'SESSION_SECRET is not set')
  })
})
