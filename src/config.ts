// Environment → typed, validated config. The only module that reads process.env.
// Each variable is declared once below; the README's configuration table is generated
// from the same list (`npm run config:doc`), and a test checks that the two agree.
import { existsSync, readFileSync } from 'node:fs'
import { isIP } from 'node:net'

export class ConfigError extends Error {}

type Env = Record<string, string | undefined>

interface Variable<T> {
  env: string
  default: string | undefined
  meaning: string
  parse: (raw: string) => T
}

function fail(env: string, raw: string, allowed: string): never {
  throw new ConfigError(`${env}=${JSON.stringify(raw)} is not valid: expected ${allowed}`)
}

function int(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (env: string) => (raw: string) => {
    const n = Number(raw)
    if (!/^-?\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      fail(env, raw, `an integer from ${min} to ${max}`)
    }
    return n
  }
}

function oneOf<T extends string>(...values: T[]) {
  return (env: string) => (raw: string) => {
    if (!values.includes(raw as T)) fail(env, raw, `one of ${values.join(', ')}`)
    return raw as T
  }
}

function bool(env: string) {
  return (raw: string) => {
    if (raw === 'true' || raw === '1') return true
    if (raw === 'false' || raw === '0') return false
    return fail(env, raw, 'true or false')
  }
}

function url(...protocols: string[]) {
  return (env: string) => (raw: string) => {
    try {
      const u = new URL(raw)
      if (protocols.includes(u.protocol)) return raw
    } catch {}
    return fail(env, withoutPassword(raw), `a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`)
  }
}

/** The value as an error may show it: a URL's password (`//user:password@`) is not printed. */
function withoutPassword(raw: string): string {
  return raw.replace(/\/\/([^/@:]*):[^/@]*@/, '//$1:***@')
}

function text(_env: string) {
  return (raw: string) => raw
}

/** `20/min`, `10/s`, `600/hour` → { max, windowMs } */
function rate(env: string) {
  const units: Record<string, number> = { s: 1000, sec: 1000, min: 60_000, minute: 60_000, h: 3_600_000, hour: 3_600_000 }
  return (raw: string) => {
    const m = /^(\d+)\s*\/\s*([a-z]+)$/.exec(raw.trim())
    const windowMs = m ? units[m[2]!] : undefined
    if (!m || windowMs === undefined || Number(m[1]) < 1) fail(env, raw, 'a rate such as 20/min, 10/s or 600/hour')
    return { max: Number(m[1]), windowMs }
  }
}

function origins(env: string) {
  return (raw: string) =>
    raw
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .map((o) => {
        try {
          const u = new URL(o)
          if (u.protocol === 'http:' || u.protocol === 'https:') return u.origin
        } catch {}
        return fail(env, o, 'comma-separated http(s) origins such as https://app.example.com')
      })
}

/** Comma-separated `host:port` seeds of a Redis Cluster. */
function hostPorts(env: string) {
  return (raw: string) => {
    const list = raw
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
    const valid = (a: string) => /^[^\s:,/]+:\d{1,5}$/.test(a) && Number(a.slice(a.lastIndexOf(':') + 1)) <= 65535
    if (list.length === 0 || !list.every(valid)) fail(env, raw, 'comma-separated host:port seeds of a Redis Cluster, such as 10.0.0.1:7000,10.0.0.2:7000')
    return list
  }
}

/** `true`, `false`, or comma-separated addresses, CIDR ranges and proxy-addr's names. */
function trustProxy(env: string) {
  const names = ['loopback', 'linklocal', 'uniquelocal']
  const address = /^(\d{1,3}(\.\d{1,3}){3}|[\da-f]*:[\da-f:.]*)(\/\d{1,3})?$/i
  return (raw: string): boolean | string[] => {
    const v = raw.trim()
    if (v === 'true' || v === 'false') return v === 'true'
    const list = v.split(',').map((s) => s.trim()).filter(Boolean)
    if (list.length === 0 || !list.every((a) => address.test(a) || names.includes(a))) {
      fail(env, raw, 'true, false, or comma-separated addresses and CIDR ranges (loopback, linklocal and uniquelocal name the private ones)')
    }
    return list
  }
}

/** An IP address, or a host name; four numbers that are not an address are a typo, not a name. */
function listenHost(env: string) {
  const label = /^[a-z\d_]([a-z\d_-]{0,61}[a-z\d_])?$/i
  return (raw: string) => {
    const labels = raw.split('.')
    const name = raw.length <= 253 && labels.every((l) => label.test(l)) && !/^\d+$/.test(labels.at(-1)!)
    if (!isIP(raw) && !name) fail(env, raw, 'an IP address of this machine (such as 127.0.0.1, or 0.0.0.0 or :: for all) or a host name (such as localhost)')
    return raw
  }
}

/** Comma-separated e-mail addresses, checked only for the shape something@something. */
function emails(env: string) {
  return (raw: string) => {
    const list = raw
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
    if (list.length === 0 || !list.every((a) => /^[^\s@]+@[^\s@]+$/.test(a))) {
      fail(env, raw, 'one or more comma-separated e-mail addresses such as ops@example.com, without spaces or names')
    }
    return list.join(', ')
  }
}

function logLevel(env: string) {
  return oneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent')(env)
}

// name → [default, meaning, parser factory]. Order is the order of the README table.
const variables = {
  ROLE: ['all', '`api`, `worker` or `all`', oneOf('api', 'worker', 'all')],
  NODE_ENV: ['development', '`production` makes `SESSION_SECRET` required and cookies `Secure`', oneOf('development', 'production', 'test')],
  HOST: ['127.0.0.1', 'where the API listens: an IP address of this machine (`0.0.0.0` or `::` for all) or a host name', listenHost],
  PORT: ['3000', 'where the API listens (0 picks a free port)', int(0, 65535)],
  WORKER_PORT: ['3001', 'health and metrics port of a `ROLE=worker` process', int(0, 65535)],
  PUBLIC_URL: [undefined, 'used for same-origin checks and links (default: `http://localhost:PORT`, or `HOST` instead of `localhost` when it is not a loopback or wildcard address)', url('http:', 'https:')],
  TRUST_PROXY: ['false', 'the load balancers whose `X-Forwarded-For` names the client: `false`, `true` (any peer) or comma-separated addresses and CIDR ranges (`uniquelocal`: the private ranges); behind a load balancer set it, or every client has the balancer’s address (per-IP rate limits, login history, anomaly flags)', trustProxy],
  ALLOWED_ORIGINS: [undefined, 'comma-separated origins allowed for CORS (with credentials), state-changing requests and WebSocket upgrades, besides the origin of `PUBLIC_URL` and the server’s own origin, which always are', origins],
  DATABASE_URL: ['postgres://localhost:5432/tessera', 'PostgreSQL; the database is created and migrated at start-up when missing', url('postgres:', 'postgresql:')],
  DATABASE_POOL_MAX: ['10', 'connection pool size per process', int(1, 1000)],
  REDIS_URL: ['redis://127.0.0.1:6379', 'Redis (one server); with `REDIS_CLUSTER_NODES` set, only its credentials and `rediss:` count', url('redis:', 'rediss:')],
  REDIS_CLUSTER_NODES: [undefined, 'comma-separated `host:port` seeds of a Redis Cluster (Redis 7 or later); when set, Tessera runs on the Cluster instead of `REDIS_URL`', hostPorts],
  REDIS_KEY_PREFIX: ['tessera:', 'prefix of every key, channel and queue', text],
  SESSION_SECRET: [undefined, 'signs CSRF tokens and realtime tickets (at least 32 characters); generated and stored in PostgreSQL on first start in development, required in production', text],
  COOKIE_SECURE: [undefined, 'the `Secure` cookie flag (default: `true` in production, else `false`)', bool],
  SESSION_LIFETIME_SECONDS: ['172800', 'runtime; absolute lifetime', int(60)],
  SESSION_IDLE_AFTER_SECONDS: ['900', 'runtime; quiet time before a session shows as idle', int(1)],
  SESSION_IDLE_TIMEOUT_SECONDS: ['7200', 'runtime; quiet time before an idle session is ended', int(1)],
  SESSION_IDLE_WARNING_SECONDS: ['60', 'runtime; warning lead time', int(0)],
  SESSION_HEARTBEAT_INTERVAL_SECONDS: ['30', 'how often tabs send `heartbeat`', int(1, 3600)],
  SESSION_SYNC_CHECK_INTERVAL_SECONDS: ['2', 'how often the client SDK polls `session_state` while its socket is down', int(1, 3600)],
  SESSION_MAX_CONCURRENT_PER_USER: ['5', 'runtime; default concurrent-session limit', int(1, 10_000)],
  SESSION_LIMIT_POLICY: ['terminate_oldest', 'runtime; `terminate_oldest` or `block_new`', oneOf('terminate_oldest', 'block_new')],
  SESSION_ENABLE_FINGERPRINTING: ['true', 'bind a session to its browser family and major version, OS and device type (docs/api.md, Fingerprinting)', bool],
  SESSION_ENABLE_AUDIT_LOGGING: ['true', 'write audit events', bool],
  SESSION_CLEANUP_INTERVAL_SECONDS: ['1800', 'how often the cleanup job runs', int(1)],
  SESSION_CLEANUP_BATCH_SIZE: ['100', 'rows per cleanup batch', int(1, 100_000)],
  ACTIVITY_FLUSH_INTERVAL_SECONDS: ['10', 'write-behind of last activity to PostgreSQL', int(1, 3600)],
  FAILED_LOGIN_THRESHOLD: ['5', 'runtime; failures within the window that raise an alert (and lock, if enabled)', int(1, 1000)],
  FAILED_LOGIN_WINDOW_SECONDS: ['900', 'runtime', int(1)],
  FAILED_LOGIN_LOCKOUT_SECONDS: ['900', 'runtime; `0` turns lockout off', int(0)],
  ANOMALY_DISTINCT_IPS: ['3', 'runtime; the "logged in from several IPs" flag', int(2, 1000)],
  ANOMALY_WINDOW_HOURS: ['24', 'runtime', int(1, 24 * 365)],
  LOGIN_RATE_LIMIT: ['20/min', 'per IP on `POST /api/auth/login`', rate],
  UUID_RATE_LIMIT: ['10/min', 'per IP on the UUID routes', rate],
  API_RATE_LIMIT: ['600/min', 'per session on other routes', rate],
  WS_MAX_PAYLOAD_BYTES: ['16384', 'largest accepted WebSocket frame', int(256, 16 * 1024 * 1024)],
  WS_MAX_BAD_MESSAGES: ['10', 'bad messages per minute before close `4400`', int(1, 10_000)],
  WS_PING_INTERVAL_SECONDS: ['10', 'server ping; two silent intervals close a socket', int(1, 3600)],
  WS_MAX_BUFFERED_BYTES: ['1048576', 'unsent bytes per socket before it is closed as a slow consumer', int(1024)],
  EVENT_LOG_MAX: ['1000', 'events kept per session for resume', int(1, 1_000_000)],
  EVENT_LOG_TTL_SECONDS: ['600', 'how long a session event log is kept, and all else an ended session leaves in Redis', int(1)],
  ADMIN_FEED_INTERVAL_MS: ['250', 'coalescing window of the admin feed', int(10, 60_000)],
  REALTIME_TICKET_SECONDS: ['30', 'lifetime of a WebSocket ticket', int(1, 3600)],
  ALERT_WEBHOOK_URL: [undefined, 'alerts are POSTed here', url('http:', 'https:')],
  ALERT_WEBHOOK_SECRET: [undefined, 'HMAC key of the `X-Tessera-Signature` header on webhook deliveries (at least 16 characters; default: derived from `SESSION_SECRET`: set it in production and share it with the receiver)', text],
  SMTP_URL: [undefined, 'alerts are also mailed through this server (`smtp://` or `smtps://`); needs `ALERT_EMAIL_TO`', url('smtp:', 'smtps:')],
  ALERT_EMAIL_TO: [undefined, 'recipients of alert mails: one or more comma-separated e-mail addresses; needs `SMTP_URL`', emails],
  AUDIT_RETENTION_DAYS: ['90', 'cleanup deletes older audit events', int(1)],
  LOGIN_HISTORY_RETENTION_DAYS: ['180', 'cleanup deletes older login history', int(1)],
  UPLOAD_DIR: ['./data/uploads', 'session-scoped uploads', text],
  UPLOAD_MAX_BYTES: ['5242880', 'largest upload', int(1)],
  UPLOAD_RETENTION_DAYS: ['7', 'days a session’s uploads are kept after it ended; then the cleanup job removes them', int(0, 3650)],
  S3_BUCKET: [undefined, 'store uploads in S3-compatible storage instead', text],
  S3_ENDPOINT: [undefined, 'S3 endpoint', url('http:', 'https:')],
  S3_REGION: [undefined, 'S3 region', text],
  ADMIN_USERNAME: ['admin', 'the first admin, created on first start', text],
  ADMIN_PASSWORD: [undefined, 'its password; generated and printed once when unset', text],
  METRICS_TOKEN: [undefined, 'when set, `/metrics` needs `Authorization: Bearer …`', text],
  OIDC_ISSUER: [undefined, 'optional identity provider for `POST /api/auth/oidc`', url('http:', 'https:')],
  OIDC_AUDIENCE: [undefined, 'expected audience of its ID tokens (required with `OIDC_ISSUER`)', text],
  OIDC_AUTO_CREATE: ['false', 'create an account (role `user`) for an identity-provider user that none is linked to', bool],
  LOG_LEVEL: ['info', 'pino level', logLevel],
} as const satisfies Record<string, readonly [string | undefined, string, (env: string) => (raw: string) => unknown]>

type Vars = typeof variables
type Parsed<K extends keyof Vars> = ReturnType<ReturnType<Vars[K][2]>>
type Raw = { [K in keyof Vars]: Vars[K][0] extends string ? Parsed<K> : Parsed<K> | undefined }

export const configVariables: Variable<unknown>[] = Object.entries(variables).map(([env, [def, meaning, factory]]) => ({
  env,
  default: def,
  meaning,
  parse: factory(env),
}))

/**
 * Reads `KEY=value` lines of a `.env` file in the working directory, in development only:
 * with NODE_ENV=production in the real environment it gives nothing, so a `.env` left on a
 * server cannot change a deployment behind the back of its environment.
 */
export function readDotEnv(path = '.env', env: Env = process.env): Env {
  if (env.NODE_ENV === 'production' || !existsSync(path)) return {}
  const out: Env = {}
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^\s*([A-Z0-9_]+)\s*=\s*(.*?)\s*$/.exec(line)
    if (m) out[m[1]!] = m[2]!.replace(/^(['"])(.*)\1$/, '$2')
  }
  return out
}

/** What a process is configured by: the environment over `.env` (read in development only). */
export function environment(env: Env = process.env, path = '.env'): Env {
  return { ...readDotEnv(path, env), ...env }
}

function parseAll(env: Env): Raw {
  const out: Record<string, unknown> = {}
  for (const v of configVariables) {
    const raw = env[v.env]
    const value = raw === undefined || raw === '' ? v.default : raw
    out[v.env] = value === undefined ? undefined : v.parse(value)
  }
  return out as Raw
}

/** Where a browser on this machine reaches the API when PUBLIC_URL is unset. */
export function defaultPublicUrl(host: string, port: number): string {
  const local = ['127.0.0.1', '0.0.0.0', '::', '::1', 'localhost', ''].includes(host)
  const name = local ? 'localhost' : host.includes(':') ? `[${host}]` : host
  return `http://${name}:${port}`
}

export function loadConfig(env: Env = process.env) {
  const r = parseAll(env)
  const production = r.NODE_ENV === 'production'
  if (production && !r.SESSION_SECRET) {
    throw new ConfigError('SESSION_SECRET is not set: it is required when NODE_ENV=production (at least 32 characters)')
  }
  if (r.SESSION_SECRET !== undefined && r.SESSION_SECRET.length < 32) {
    throw new ConfigError('SESSION_SECRET=<hidden> is not valid: expected at least 32 characters')
  }
  if (r.ALERT_WEBHOOK_SECRET !== undefined && r.ALERT_WEBHOOK_SECRET.length < 16) {
    throw new ConfigError('ALERT_WEBHOOK_SECRET=<hidden> is not valid: expected at least 16 characters')
  }
  if (r.SESSION_IDLE_TIMEOUT_SECONDS <= r.SESSION_IDLE_AFTER_SECONDS) {
    fail('SESSION_IDLE_TIMEOUT_SECONDS', String(r.SESSION_IDLE_TIMEOUT_SECONDS), `more than SESSION_IDLE_AFTER_SECONDS (${r.SESSION_IDLE_AFTER_SECONDS})`)
  }
  if (r.OIDC_ISSUER && !r.OIDC_AUDIENCE) fail('OIDC_AUDIENCE', '(unset)', 'the client id your identity provider puts in `aud`, required with OIDC_ISSUER')
  // Either one alone would leave mail silently off.
  if (r.SMTP_URL && !r.ALERT_EMAIL_TO) fail('ALERT_EMAIL_TO', '(unset)', 'one or more comma-separated e-mail addresses, required with SMTP_URL')
  if (r.ALERT_EMAIL_TO && !r.SMTP_URL) fail('SMTP_URL', '(unset)', 'a URL starting with smtp:// or smtps://, required with ALERT_EMAIL_TO')
  const publicUrl = r.PUBLIC_URL ?? defaultPublicUrl(r.HOST, r.PORT)
  // A HOST that is valid but no URL's host (an IPv6 address with a zone, fe80::1%eth0).
  if (!URL.canParse(publicUrl)) fail('PUBLIC_URL', '(unset)', `an http(s) URL of this service: HOST=${r.HOST} makes none by itself`)
  const publicOrigin = new URL(publicUrl).origin
  return {
    role: r.ROLE,
    production,
    host: r.HOST,
    port: r.PORT,
    workerPort: r.WORKER_PORT,
    publicUrl,
    publicUrlGiven: r.PUBLIC_URL !== undefined,
    trustProxy: r.TRUST_PROXY,
    allowedOrigins: [...new Set([publicOrigin, ...(r.ALLOWED_ORIGINS ?? [])])],
    databaseUrl: r.DATABASE_URL,
    databasePoolMax: r.DATABASE_POOL_MAX,
    redisUrl: r.REDIS_URL,
    redisClusterNodes: r.REDIS_CLUSTER_NODES ?? null,
    redisKeyPrefix: r.REDIS_KEY_PREFIX,
    sessionSecret: r.SESSION_SECRET,
    cookieSecure: r.COOKIE_SECURE ?? production,
    heartbeatIntervalSeconds: r.SESSION_HEARTBEAT_INTERVAL_SECONDS,
    syncCheckIntervalSeconds: r.SESSION_SYNC_CHECK_INTERVAL_SECONDS,
    fingerprinting: r.SESSION_ENABLE_FINGERPRINTING,
    auditLogging: r.SESSION_ENABLE_AUDIT_LOGGING,
    cleanupIntervalSeconds: r.SESSION_CLEANUP_INTERVAL_SECONDS,
    cleanupBatchSize: r.SESSION_CLEANUP_BATCH_SIZE,
    activityFlushIntervalSeconds: r.ACTIVITY_FLUSH_INTERVAL_SECONDS,
    /** Initial values of the runtime Settings record; the record wins once it exists. */
    initialSettings: {
      idleAfterSeconds: r.SESSION_IDLE_AFTER_SECONDS,
      idleTimeoutSeconds: r.SESSION_IDLE_TIMEOUT_SECONDS,
      lifetimeSeconds: r.SESSION_LIFETIME_SECONDS,
      idleWarningSeconds: r.SESSION_IDLE_WARNING_SECONDS,
      concurrentLimits: { byRole: {}, byUser: {}, default: r.SESSION_MAX_CONCURRENT_PER_USER },
      limitPolicy: r.SESSION_LIMIT_POLICY,
      failedLogin: {
        threshold: r.FAILED_LOGIN_THRESHOLD,
        windowSeconds: r.FAILED_LOGIN_WINDOW_SECONDS,
        lockoutEnabled: r.FAILED_LOGIN_LOCKOUT_SECONDS > 0,
        lockoutSeconds: Math.max(r.FAILED_LOGIN_LOCKOUT_SECONDS, 1),
        byUser: {},
      },
      anomaly: { distinctIps: r.ANOMALY_DISTINCT_IPS, windowHours: r.ANOMALY_WINDOW_HOURS },
    },
    rateLimits: { login: r.LOGIN_RATE_LIMIT, uuid: r.UUID_RATE_LIMIT, api: r.API_RATE_LIMIT },
    ws: {
      maxPayloadBytes: r.WS_MAX_PAYLOAD_BYTES,
      maxBadMessages: r.WS_MAX_BAD_MESSAGES,
      pingIntervalSeconds: r.WS_PING_INTERVAL_SECONDS,
      /**
       * A tab not heard from for this long no longer counts in presence (a node that died
       * cannot say goodbye). Live tabs are refreshed every ping interval; the half interval
       * of slack covers a slow ping round, and with the admin feed's reconcile keeps P12's
       * 20 s for a vanished tab.
       */
      tabStaleMs: r.WS_PING_INTERVAL_SECONDS * 1500,
      maxBufferedBytes: r.WS_MAX_BUFFERED_BYTES,
    },
    eventLog: { max: r.EVENT_LOG_MAX, ttlSeconds: r.EVENT_LOG_TTL_SECONDS },
    adminFeedIntervalMs: r.ADMIN_FEED_INTERVAL_MS,
    realtimeTicketSeconds: r.REALTIME_TICKET_SECONDS,
    alerts: { webhookUrl: r.ALERT_WEBHOOK_URL, webhookSecret: r.ALERT_WEBHOOK_SECRET, smtpUrl: r.SMTP_URL, emailTo: r.ALERT_EMAIL_TO },
    retention: { auditDays: r.AUDIT_RETENTION_DAYS, loginHistoryDays: r.LOGIN_HISTORY_RETENTION_DAYS, uploadDays: r.UPLOAD_RETENTION_DAYS },
    uploads: { dir: r.UPLOAD_DIR, maxBytes: r.UPLOAD_MAX_BYTES, s3Bucket: r.S3_BUCKET, s3Endpoint: r.S3_ENDPOINT, s3Region: r.S3_REGION },
    bootstrapAdmin: { username: r.ADMIN_USERNAME, password: r.ADMIN_PASSWORD },
    metricsToken: r.METRICS_TOKEN,
    oidc: { issuer: r.OIDC_ISSUER, audience: r.OIDC_AUDIENCE, autoCreate: r.OIDC_AUTO_CREATE },
    logLevel: r.LOG_LEVEL,
  }
}

/**
 * A failure to listen that HOST or the port explains, as one line naming the variable, its
 * value and what to do; null for any other error, which is unexpected and keeps its stack.
 */
export function listenFailure(err: unknown, host: string, portVariable: 'PORT' | 'WORKER_PORT', port: number): ConfigError | null {
  const code = (err as NodeJS.ErrnoException | null)?.code
  const hostIs = `HOST=${JSON.stringify(host)}`
  switch (code) {
    case 'EADDRINUSE':
      return new ConfigError(`${portVariable}=${port} is in use (on ${host}): stop the other process or choose another ${portVariable}`)
    case 'EACCES':
      return new ConfigError(`${portVariable}=${port} is not allowed for this user (on ${host}): choose a ${portVariable} from 1024 up, or give node the right to bind low ports (CAP_NET_BIND_SERVICE)`)
    case 'EADDRNOTAVAIL':
      return new ConfigError(`${hostIs} is not an address of this machine: use one of its addresses, 127.0.0.1 for this machine only, or 0.0.0.0 for all`)
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new ConfigError(`${hostIs} cannot be resolved (${code}): use an IP address of this machine, or a host name that resolves to one`)
    default:
      return null
  }
}

export type Config = ReturnType<typeof loadConfig>
export type InitialSettings = Config['initialSettings']
