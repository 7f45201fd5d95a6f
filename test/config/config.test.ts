// Configuration: defaults, one-line errors for bad values, and what the process prints
// when a value is bad or PostgreSQL or Redis cannot be reached.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { ConfigError, configVariables, environment, listenFailure, loadConfig, readDotEnv } from '../../src/config.js'
import { dropDatabase } from '../../src/infra/db.js'
import { deleteKeysWithPrefix } from '../../src/infra/redis.js'
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

t.test("a bad URL is refused without echoing the password in it", async (t) => {
  for (const [name, value] of [
    ['SMTP_URL', 'http://mailer:hunter2-secret@mail.example:25'] as const,
    ['DATABASE_URL', 'mysql://tessera:hunter2-secret@db:3306/x'] as const,
    ['REDIS_URL', 'http://:hunter2-secret@cache:6379'] as const,
  ]) {
    const message = refuses(t, { [name]: value, ALERT_EMAIL_TO: 'ops@example.com' }, [name, '***@'])
    t.notMatch(message, 'hunter2', `${name}: the password is not shown`)
  }
})

t.test('SESSION_IDLE_TIMEOUT_SECONDS must exceed SESSION_IDLE_AFTER_SECONDS', async (t) => {
  refuses(t, { SESSION_IDLE_AFTER_SECONDS: '600', SESSION_IDLE_TIMEOUT_SECONDS: '600' }, ['SESSION_IDLE_TIMEOUT_SECONDS', '"600"', 'SESSION_IDLE_AFTER_SECONDS (600)'])
  refuses(t, { SESSION_IDLE_TIMEOUT_SECONDS: '300' }, ['SESSION_IDLE_TIMEOUT_SECONDS', '"300"', 'more than SESSION_IDLE_AFTER_SECONDS (900)'])
})

// Audit: HOST was taken as any text, and a malformed one (999.1.1.1) ended in a stack trace.
t.test('HOST is an IP address or a host name; anything else is refused on one line', async (t) => {
  for (const host of ['127.0.0.1', '0.0.0.0', '::', '::1', 'fe80::1%eth0', '10.0.0.5', 'localhost', 'api-1.internal', 'tessera_api_1', 'example.com'])
    t.doesNotThrow(() => configVariables.find((v) => v.env === 'HOST')!.parse(host), host)
  t.equal(loadConfig({ HOST: '0.0.0.0' }).host, '0.0.0.0')
  t.equal(loadConfig({ HOST: 'api-1.internal', PORT: '8080' }).publicUrl, 'http://api-1.internal:8080')
  for (const host of ['999.1.1.1', '1.2.3', 'not a host', 'a..b', '-api', 'http://x', '[::1]', 'x:3000', ' 127.0.0.1'])
    refuses(t, { HOST: host }, ['HOST', JSON.stringify(host), 'an IP address of this machine', 'or a host name'])
  // Valid to listen on, but no URL can hold it: PUBLIC_URL must say where the service is.
  refuses(t, { HOST: 'fe80::1%eth0' }, ['PUBLIC_URL', 'HOST=fe80::1%eth0'])
  t.equal(loadConfig({ HOST: 'fe80::1%eth0', PUBLIC_URL: 'https://tessera.example' }).publicUrl, 'https://tessera.example')
})

// Audit: either half of the pair alone was accepted, and mail was silently off.
t.test('SMTP_URL and ALERT_EMAIL_TO need each other; ALERT_EMAIL_TO is one or more addresses', async (t) => {
  const smtp = 'smtp://mail.example:25'
  refuses(t, { SMTP_URL: smtp }, ['ALERT_EMAIL_TO', '(unset)', 'e-mail addresses', 'required with SMTP_URL'])
  refuses(t, { ALERT_EMAIL_TO: 'ops@example.com' }, ['SMTP_URL', '(unset)', 'smtp://', 'required with ALERT_EMAIL_TO'])
  for (const to of ['notanemail', 'ops@', '@example.com', 'ops@example.com,bad', 'Ops <ops@example.com>', 'a@b@c', ','])
    refuses(t, { SMTP_URL: smtp, ALERT_EMAIL_TO: to }, ['ALERT_EMAIL_TO', JSON.stringify(to), 'one or more comma-separated e-mail addresses'])
  t.same(loadConfig({ SMTP_URL: smtp, ALERT_EMAIL_TO: 'ops@example.com' }).alerts, { smtpUrl: smtp, emailTo: 'ops@example.com' })
  t.equal(loadConfig({ SMTP_URL: smtp, ALERT_EMAIL_TO: ' ops@example.com ,oncall@example.org,' }).alerts.emailTo, 'ops@example.com, oncall@example.org')
  t.same(loadConfig({}).alerts, { smtpUrl: undefined, emailTo: undefined }, 'neither: mail is off, and that is fine')
})

// Audit: .env was read with NODE_ENV=production too; config.md reads it in development.
t.test('.env is read in development only: NODE_ENV=production in the environment skips it', async (t) => {
  const dir = t.testdir({ '.env': 'SESSION_LIMIT_POLICY=block_new\nPORT="4000"\nNODE_ENV=test\n' })
  const path = join(dir, '.env')
  t.same(readDotEnv(path, {}), { SESSION_LIMIT_POLICY: 'block_new', PORT: '4000', NODE_ENV: 'test' })
  t.same(readDotEnv(path, { NODE_ENV: 'development' }), { SESSION_LIMIT_POLICY: 'block_new', PORT: '4000', NODE_ENV: 'test' })
  t.same(readDotEnv(path, { NODE_ENV: 'production' }), {})
  t.same(environment({ PORT: '5000' }, path), { SESSION_LIMIT_POLICY: 'block_new', PORT: '5000', NODE_ENV: 'test' }, 'the environment wins')
  t.same(environment({ NODE_ENV: 'production', PORT: '5000' }, path), { NODE_ENV: 'production', PORT: '5000' })
  t.same(environment({}, join(dir, 'missing.env')), {})
})

t.test('a listen failure that HOST or the port explains is one line naming it; others are not explained', async (t) => {
  const failure = (code: string, variable: 'PORT' | 'WORKER_PORT' = 'PORT', host = '127.0.0.1', port = 3000) =>
    listenFailure(Object.assign(new Error(`listen ${code}`), { code }), host, variable, port)
  t.equal(failure('EADDRINUSE')?.message, 'PORT=3000 is in use (on 127.0.0.1): stop the other process or choose another PORT')
  t.equal(failure('EADDRINUSE', 'WORKER_PORT', '0.0.0.0', 3001)?.message, 'WORKER_PORT=3001 is in use (on 0.0.0.0): stop the other process or choose another WORKER_PORT')
  t.match(failure('EACCES', 'PORT', '0.0.0.0', 80)?.message, /^PORT=80 is not allowed for this user \(on 0\.0\.0\.0\): choose a PORT from 1024 up/)
  t.match(failure('EADDRNOTAVAIL', 'PORT', '192.0.2.1')?.message, /^HOST="192\.0\.2\.1" is not an address of this machine: /)
  t.match(failure('ENOTFOUND', 'PORT', 'nowhere.invalid')?.message, /^HOST="nowhere\.invalid" cannot be resolved \(ENOTFOUND\): /)
  t.match(failure('EAI_AGAIN', 'PORT', 'nowhere.invalid')?.message, /^HOST="nowhere\.invalid" cannot be resolved \(EAI_AGAIN\): /)
  for (const code of ['EADDRINUSE', 'EACCES', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN']) {
    t.type(failure(code), ConfigError)
    t.notMatch(failure(code)?.message, /\n/)
  }
  t.equal(failure('EMFILE'), null, 'anything else is unexpected and keeps its stack')
  t.equal(listenFailure(new TypeError('boom'), '127.0.0.1', 'PORT', 3000), null)
})

// ---- the process: `node src/main.ts` with a bad value or a missing dependency ----

async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** A server holding a port of 127.0.0.1, closed when the test ends. */
async function heldPort(t: Test): Promise<number> {
  const server: Server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  return (server.address() as { port: number }).port
}

interface StartOptions {
  /** The working directory (where `.env` is looked for); the checkout by default. */
  cwd?: string
  /** The script and its arguments; the service by default. */
  argv?: string[]
}

/** Runs the service's entry point with only `env` for configuration; resolves when it exits. */
async function start(env: Record<string, string>, opts: StartOptions = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const prefix = `tessera-test:${randomBytes(6).toString('hex')}:`
  try {
    return await run({ REDIS_KEY_PREFIX: prefix, ...env }, opts)
  } finally {
    // A process that got as far as its job queues (refused only when it came to listen) left keys.
    const redis = new Redis(testRedisUrl(), { lazyConnect: true, maxRetriesPerRequest: 1 })
    await deleteKeysWithPrefix(redis, prefix).finally(() => redis.disconnect())
  }
}

function run(env: Record<string, string>, opts: StartOptions): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const base: Record<string, string | undefined> = { ...process.env }
  for (const v of configVariables) delete base[v.env]
  const [script = 'src/main.ts', ...args] = opts.argv ?? []
  return new Promise((resolve, reject) => {
    // tsx and the script by absolute path: the working directory may be elsewhere.
    const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), join(root, script), ...args], {
      cwd: opts.cwd ?? root,
      env: { ...base, LOG_LEVEL: 'silent', ...env },
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

  t.test('a malformed HOST: one line naming it, exit 1, before connecting anywhere', { buffered: true }, async (t) => {
    const r = await start({ HOST: '999.1.1.1', DATABASE_URL: `postgres://127.0.0.1:${await closedPort()}/tessera` })
    t.equal(r.code, 1)
    noStack(t, r.stderr)
    t.match(oneLine(t, r.stderr), /^tessera: HOST="999\.1\.1\.1" is not valid: expected an IP address of this machine .* or a host name/)
  })

  // Audit: a port in use, or an address not of this machine, printed the listen error's stack.
  const refusedToListen = async (t: Test, env: Record<string, string>, expected: RegExp) => {
    const r = await start({ ...withDatabase(t), REDIS_URL: testRedisUrl(), ...env })
    t.equal(r.code, 1)
    noStack(t, r.stderr)
    t.match(oneLine(t, r.stderr), expected)
  }

  t.test('PORT in use: one line naming PORT and its value, exit 1', { buffered: true }, async (t) => {
    const port = await heldPort(t)
    await refusedToListen(t, { HOST: '127.0.0.1', PORT: String(port) }, new RegExp(`^tessera: PORT=${port} is in use \\(on 127\\.0\\.0\\.1\\): stop the other process or choose another PORT$`))
  })

  t.test('ROLE=worker with WORKER_PORT in use: one line naming WORKER_PORT, exit 1', { buffered: true }, async (t) => {
    const port = await heldPort(t)
    await refusedToListen(t, { ROLE: 'worker', HOST: '127.0.0.1', WORKER_PORT: String(port) }, new RegExp(`^tessera: WORKER_PORT=${port} is in use .*choose another WORKER_PORT$`))
  })

  t.test('a HOST that is no address of this machine: one line naming HOST, exit 1', { buffered: true }, async (t) => {
    // 192.0.2.0/24 is TEST-NET-1: documentation only, never a local address.
    await refusedToListen(t, { HOST: '192.0.2.1', PORT: '0' }, /^tessera: HOST="192\.0\.2\.1" is not an address of this machine: /)
  })

  t.test('a HOST name that does not resolve: one line naming HOST, exit 1', { buffered: true }, async (t) => {
    // .invalid never resolves (RFC 2606); without a name server the lookup fails with EAI_AGAIN instead.
    await refusedToListen(t, { HOST: 'nonexistent.invalid', PORT: '0' }, /^tessera: HOST="nonexistent\.invalid" cannot be resolved \((ENOTFOUND|EAI_AGAIN)\): /)
  })

  // A .env that would be refused shows whether it was read: with NODE_ENV=production the
  // process gets as far as PostgreSQL instead.
  const badDotEnv = (t: Test) => t.testdir({ '.env': 'SESSION_LIMIT_POLICY=nope\n' })
  const production = async () => ({
    NODE_ENV: 'production',
    SESSION_SECRET: 'x'.repeat(32),
    DATABASE_URL: `postgres://127.0.0.1:${await closedPort()}/tessera`,
  })

  t.test('in development the service reads .env in its working directory', { buffered: true }, async (t) => {
    const r = await start({ DATABASE_URL: `postgres://127.0.0.1:${await closedPort()}/tessera` }, { cwd: badDotEnv(t) })
    t.equal(r.code, 1)
    t.match(oneLine(t, r.stderr), 'SESSION_LIMIT_POLICY="nope" is not valid')
  })

  t.test('with NODE_ENV=production the service does not read .env', { buffered: true }, async (t) => {
    const r = await start(await production(), { cwd: badDotEnv(t) })
    t.equal(r.code, 1)
    const line = oneLine(t, r.stderr)
    t.notMatch(line, 'SESSION_LIMIT_POLICY')
    t.match(line, 'PostgreSQL is not reachable')
  })

  t.test('with NODE_ENV=production the CLI does not read .env either', { buffered: true }, async (t) => {
    const r = await start(await production(), { cwd: badDotEnv(t), argv: ['src/cli/main.ts', 'sessions'] })
    t.equal(r.code, 1)
    const line = oneLine(t, r.stderr)
    t.notMatch(line, 'SESSION_LIMIT_POLICY')
    t.match(line, 'PostgreSQL')
  })

  t.test('a bad value in production is still one line (SESSION_SECRET missing)', { buffered: true }, async (t) => {
    const r = await start({ NODE_ENV: 'production', DATABASE_URL: `postgres://127.0.0.1:${await closedPort()}/tessera` })
    t.not(r.code, 0)
    t.match(oneLine(t, r.stderr), 'SESSION_SECRET is not set')
  })
})
