// buildApp(deps): the Fastify instance with every feature registered. Used by main and tests.
import { randomUUID } from 'node:crypto'
import cookie from '@fastify/cookie'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { Ajv } from 'ajv'
import formatsPlugin from 'ajv-formats'
import Fastify, { type FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import { pino } from 'pino'
import { AdminFeed } from './admin/feed.js'
import { adminRoutes } from './admin/routes.js'
import { adminSessionRoutes } from './admin/session-routes.js'
import { analyticsRoutes } from './analytics/routes.js'
import { hasSinks } from './alerts/delivery.js'
import { alertRoutes } from './alerts/routes.js'
import { Alerts } from './alerts/service.js'
import { Audit } from './audit/service.js'
import { registerCors } from './auth/cors.js'
import { SESSION_COOKIE, installGuards, requestInfo } from './sessions/guards.js'
import { Login } from './auth/login.js'
import { installRateLimits } from './auth/rate-limits.js'
import { oidcRoutes } from './auth/oidc-routes.js'
import { authRoutes } from './auth/routes.js'
import type { Config } from './config.js'
import type { AppContext } from './context.js'
import type { Database } from './infra/db.js'
import { installErrorHandler } from './infra/errors.js'
import { redisKeys } from './infra/keys.js'
import { SUBSCRIBER_OPTIONS } from './infra/redis.js'
import { loggerOptions } from './infra/logger.js'
import { installSecurityHeaders } from './infra/security-headers.js'
import { createMetrics } from './infra/metrics.js'
import { lockRoutes } from './locks/routes.js'
import { Locks } from './locks/service.js'
import { ErrorBody } from './infra/schemas.js'
import { Queues } from './jobs/queues.js'
import { opsRoutes } from './ops/routes.js'
import { Platforms } from './platforms/service.js'
import { platformRoutes } from './platforms/routes.js'
import { Presence } from './presence/service.js'
import { EventBus } from './infra/bus.js'
import { Hub } from './realtime/hub.js'
import { realtimeRoutes } from './realtime/routes.js'
import { Tickets } from './realtime/ticket.js'
import { Sessions } from './sessions/service.js'
import { StateCache } from './sessions/state-cache.js'
import { SessionEndings } from './sessions/endings.js'
import { SessionStore } from './sessions/store.js'
import { sessionRoutes } from './sessions/routes.js'
import { SettingsService } from './settings/service.js'
import { webRoutes } from './web/routes.js'
import { uploadRoutes } from './uploads/routes.js'
import { Uploads } from './uploads/service.js'
import { createStorage } from './uploads/create-storage.js'

export interface AppDeps {
  config: Config
  database: Database
  redis: Redis
  /** SESSION_SECRET, or the generated one (resources.ts) */
  secret: string
  /** Where log lines go (stdout by default; tests capture them). */
  logStream?: { write(line: string): void }
}

export interface Tessera {
  app: FastifyInstance
  ctx: AppContext
  hub: Hub
  /** The session-ended job releases and announces a session's locks through this. */
  locks: Locks
  close(): Promise<void>
}

const formats = (formatsPlugin as unknown as { default?: typeof formatsPlugin }).default ?? formatsPlugin

function validators() {
  // Bodies are checked strictly (no type coercion: `"3"` is not a number); path and query
  // values arrive as strings and are coerced to the schema's types.
  const strict = new Ajv({ allErrors: false, coerceTypes: false, useDefaults: true, removeAdditional: false, strict: false })
  const coercing = new Ajv({ allErrors: false, coerceTypes: 'array', useDefaults: true, removeAdditional: false, strict: false })
  for (const ajv of [strict, coercing]) (formats as unknown as (a: Ajv) => void)(ajv)
  return ({ schema, httpPart }: { schema: object; httpPart?: string }) => {
    if (httpPart !== 'body') return coercing.compile(schema) as never
    // A POST without a body is checked as an empty object, so optional-only bodies pass.
    const validate = strict.compile(schema)
    const check = (data: unknown) => {
      const ok = validate(data ?? {})
      check.errors = validate.errors
      return ok
    }
    check.errors = validate.errors
    return check as never
  }
}

/**
 * `Content-Type: application/json` with an empty body (what `fetch` sends for a bodiless
 * POST with JSON headers) is no body, not a parse error; anything else parses as before,
 * with Fastify's prototype-poisoning checks.
 */
function acceptEmptyJson(app: FastifyInstance) {
  const parseJson = app.getDefaultJsonParser('error', 'error')
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    if ((body as string).trim() === '') return done(null, undefined)
    parseJson(req, body as string, done)
  })
}

export function buildContext(deps: AppDeps): AppContext {
  const { config, database, redis, secret } = deps
  const keys = redisKeys(config.redisKeyPrefix)
  const metrics = createMetrics()
  metrics.dbPool.set(config.databasePoolMax)
  metrics.sources.poolUsage = () => database.poolUsage()
  const queues = new Queues(config.redisUrl, keys.bullPrefix, config.eventLog.ttlSeconds)
  const audit = new Audit(database.db, config.auditLogging)
  const settings = new SettingsService(database.db, audit, config.initialSettings)
  const bus = new EventBus({ redis, keys, metrics, eventLog: config.eventLog })
  const store = new SessionStore(database.sql, redis, keys, config.eventLog.ttlSeconds, config.ws.tabStaleMs)
  const states = new StateCache(database.sql, redis, keys)
  const locks = new Locks({ sql: database.sql, bus, keys, audit })
  const log = deps.logStream ? pino(loggerOptions(config.logLevel), deps.logStream) : pino(loggerOptions(config.logLevel))
  const alerts = new Alerts({
    sql: database.sql,
    redis,
    keys,
    settings,
    audit,
    log: log.child({ feature: 'alerts' }),
    queue: hasSinks(config) ? queues : undefined,
  })
  const sessions = new Sessions({
    store,
    states,
    sql: database.sql,
    settings,
    bus,
    keys,
    audit,
    metrics,
    fingerprinting: config.fingerprinting,
    onEnded: (ended) => queues.enqueueEnded(ended),
    alerts,
    log: log.child({ feature: 'sessions' }),
  })
  // Sessions by status on every process's /metrics, workers' included.
  metrics.sources.sessionCounts = async () => {
    const s = await settings.get()
    const [row] = await database.sql`select
        count(*) filter (where status = 'active' and last_activity > now() - make_interval(secs => ${s.idleAfterSeconds}))::int as active,
        count(*) filter (where status = 'active' and last_activity <= now() - make_interval(secs => ${s.idleAfterSeconds}))::int as idle,
        count(*) filter (where status = 'ended' and ended_at > now() - interval '24 hours')::int as ended
      from sessions where status = 'active' or ended_at > now() - interval '24 hours'`
    return { active: Number(row?.active ?? 0), idle: Number(row?.idle ?? 0), ended: Number(row?.ended ?? 0) }
  }
  const uploads = new Uploads({ sql: database.sql, storage: createStorage(config.uploads), audit, maxBytes: config.uploads.maxBytes })
  return { config, secret, database, redis, keys, metrics, bus, audit, settings, sessions, store, endings: new SessionEndings(store), states, queues, locks, alerts, uploads }
}

export async function buildApp(deps: AppDeps): Promise<Tessera> {
  const ctx = buildContext(deps)
  const { config, metrics } = ctx
  await ctx.settings.ensure()
  const app = Fastify({
    logger: { ...loggerOptions(config.logLevel), ...(deps.logStream ? { stream: deps.logStream } : {}) },
    genReqId: (req) => {
      const given = req.headers['x-request-id']
      return typeof given === 'string' && /^[\w.:-]{1,100}$/.test(given) ? given : randomUUID()
    },
    bodyLimit: 64 * 1024,
    trustProxy: config.trustProxy,
    // Lock names have up to 200 characters: 400 UTF-16 units when astral (checked after decoding).
    routerOptions: { maxParamLength: 400 },
    ajv: { customOptions: { strict: false } },
  }) as unknown as FastifyInstance
  app.setValidatorCompiler(validators())
  acceptEmptyJson(app)
  app.addSchema(ErrorBody)
  installErrorHandler(app)

  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id)
  })
  app.addHook('onResponse', async (req, reply) => {
    metrics.httpDuration.observe(
      { method: req.method, route: req.routeOptions.url ?? 'unmatched', status: `${Math.floor(reply.statusCode / 100)}xx` },
      reply.elapsedTime / 1000,
    )
  })

  await app.register(cookie)
  await installSecurityHeaders(app, {
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        // Swagger UI at /docs needs inline styles and its own bundled scripts only.
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'", ...config.allowedOrigins.map((o) => o.replace(/^http/, 'ws'))],
        upgradeInsecureRequests: config.production ? [] : null,
      },
    },
    hsts: config.production,
  })
  // In this order: CORS answers preflights first; then every rate limit, before any guard.
  await registerCors(app, config)
  const platforms = new Platforms(ctx.database.sql, ctx.bus, ctx.audit, ctx.states)
  const login = new Login({ ...ctx, db: ctx.database.db, sql: ctx.database.sql, platforms, log: app.log })
  await installRateLimits(app, ctx, {
    onLoginLimited: (req) => {
      const username = (req.body as { username?: unknown } | undefined)?.username
      return login.recordRateLimited(typeof username === 'string' ? username : null, requestInfo(req))
    },
  })
  await app.register(swagger, {
    openapi: {
      info: { title: 'Tessera', description: 'Real-time session service: HTTP API. The WebSocket protocol is in docs/realtime.md.', version: '0.1.0' },
      components: { securitySchemes: { session: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE }, csrf: { type: 'apiKey', in: 'header', name: 'X-CSRF-Token' } } },
      security: [{ session: [], csrf: [] }],
    },
    refResolver: { buildLocalReference: (json, _base, _frag, i) => (json.$id as string) ?? `def-${i}` },
  })
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true })

  installGuards(app, ctx)
  await app.register(opsRoutes, { ctx })
  await app.register(authRoutes, { ctx, login })
  await app.register(oidcRoutes, { ctx, login })
  await app.register(sessionRoutes, { ctx })
  await app.register(platformRoutes, { ctx, platforms })
  await app.register(lockRoutes, { ctx, locks: ctx.locks })
  await app.register(adminRoutes, { ctx })
  await app.register(adminSessionRoutes, { ctx })
  await app.register(analyticsRoutes, { ctx })
  await app.register(alertRoutes, { ctx })
  await app.register(uploadRoutes, { ctx })
  await app.register(webRoutes)

  const subscriber = ctx.redis.duplicate({ ...SUBSCRIBER_OPTIONS, connectionName: 'tessera-subscriber' })
  subscriber.on('error', () => {})
  await subscriber.connect()
  const adminFeed = new AdminFeed({
    sql: ctx.database.sql,
    redis: ctx.redis,
    keys: ctx.keys,
    sessions: ctx.sessions,
    settings: ctx.settings,
    intervalMs: config.adminFeedIntervalMs,
    log: app.log,
  })
  const hub = new Hub({
    redis: ctx.redis,
    subscriber,
    keys: ctx.keys,
    metrics,
    config,
    sessions: ctx.sessions,
    presence: new Presence(ctx.redis, ctx.keys, config.ws.tabStaleMs),
    log: app.log,
    admin: adminFeed,
  })
  await hub.start()
  const tickets = new Tickets(ctx.secret, ctx.redis, ctx.keys, config.realtimeTicketSeconds)
  await app.register(realtimeRoutes, { ctx, hub, tickets })


  let closing: Promise<void> | undefined
  return {
    app,
    ctx,
    hub,
    locks: ctx.locks,
    close: () => {
      closing ??= (async () => {
        await app.close()
        await hub.close()
        await adminFeed.close()
        await ctx.queues.close()
      })()
      return closing
    },
  }
}

