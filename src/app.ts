// buildApp(deps): the Fastify instance with every feature registered, one plugin per
// feature in the order of their layers (docs/architecture.md). Used by main and tests.
// buildCore(deps): the same services without HTTP, for a worker-only process and the CLI.
import { randomUUID } from 'node:crypto'
import cookie from '@fastify/cookie'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { Ajv } from 'ajv'
import formatsPlugin from 'ajv-formats'
import Fastify, { type FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import admin from './admin/index.js'
import alerts from './alerts/index.js'
import analytics from './analytics/index.js'
import { alertKeys } from './alerts/keys.js'
import audit from './audit/index.js'
import auth from './auth/index.js'
import { setCorsHeaders } from './auth/cors.js'
import { authKeys } from './auth/keys.js'
import type { Config } from './config.js'
import type { Database } from './infra/db.js'
import { installApiRouteDefaults } from './infra/api-routes.js'
import { AppError, installErrorHandler } from './infra/errors.js'
import { infraKeys } from './infra/keys.js'
import infra from './infra/index.js'
import { lazyRequestLogger, loggerOptions } from './infra/logger.js'
import { ErrorBody } from './infra/schemas.js'
import { asValidationError, findFlaw, isJson } from './infra/input-hygiene.js'
import { ARRIVAL_LIMITS, clientErrorHandler, frameworkErrors, type HeaderList, refuseStalledBodies } from './infra/pre-route.js'
import { installSecurityHeaders, securityHeaders } from './infra/security-headers.js'
import locks from './locks/index.js'
import ops from './ops/index.js'
import platforms from './platforms/index.js'
import presence from './presence/index.js'
import realtime from './realtime/index.js'
import type { Hub } from './realtime/hub.js'
import { realtimeKeys } from './realtime/keys.js'
import { SESSION_COOKIE } from './sessions/guards.js'
import sessions from './sessions/index.js'
import { sessionKeys } from './sessions/keys.js'
import settings from './settings/index.js'
import uploads from './uploads/index.js'
import web from './web/index.js'

export interface AppDeps {
  config: Config
  database: Database
  redis: Redis
  /** SESSION_SECRET, or the generated one (resources.ts) */
  secret: string
  /** Where log lines go (stdout by default; tests capture them). */
  logStream?: { write(line: string): void }
}

/** The live services of a process, as the workers, the CLI and the tests reach them. */
export type TesseraParts = Pick<
  FastifyInstance,
  | 'config'
  | 'secret'
  | 'database'
  | 'redis'
  | 'sessionKeys'
  | 'authKeys'
  | 'metrics'
  | 'bus'
  | 'queues'
  | 'audit'
  | 'settings'
  | 'sessions'
  | 'sessionDetails'
  | 'states'
  | 'endings'
  | 'loginHistory'
  | 'locks'
  | 'alerts'
  | 'uploads'
> & {
  /** Every feature's Redis keys together, for the tests and the benchmarks. */
  keys: RedisKeys
  /** The sessions store, for tests that look under the service. */
  store: FastifyInstance['sessionStore']
}

export interface TesseraCore {
  app: FastifyInstance
  ctx: TesseraParts
  close(): Promise<void>
}

export interface Tessera extends TesseraCore {
  hub: Hub
  /** The session-ended job releases and announces a session's locks through this. */
  locks: FastifyInstance['locks']
}

/** Every feature's Redis keys under one prefix (each feature's keys.ts). */
export function redisKeys(prefix: string) {
  const infra = infraKeys(prefix)
  return { ...infra, ...sessionKeys(infra), ...authKeys(infra), ...realtimeKeys(infra), ...alertKeys(infra) }
}

export type RedisKeys = ReturnType<typeof redisKeys>

function partsOf(app: FastifyInstance): TesseraParts {
  const { config, secret, database, redis, sessionKeys, authKeys, metrics, bus, queues, audit, settings, sessions, sessionDetails, states, endings, loginHistory, locks, alerts, uploads } = app
  const parts = { config, secret, database, redis, sessionKeys, authKeys, metrics, bus, queues, audit, settings, sessions, sessionDetails, states, endings, loginHistory, locks, alerts, uploads }
  return { ...parts, keys: redisKeys(config.redisKeyPrefix), store: app.sessionStore }
}

// Lock names have up to 200 characters: 400 UTF-16 units when astral (checked after decoding).
const MAX_PARAM_LENGTH = 400

// ajv-formats is CommonJS: imported from ESM its default is module.exports, whose `default` is the plugin.
const addFormats = formatsPlugin.default

function validators() {
  // Bodies are checked strictly (no type coercion: `"3"` is not a number); path and query
  // values arrive as strings and are coerced to the schema's types.
  const strict = new Ajv({ allErrors: false, coerceTypes: false, useDefaults: true, removeAdditional: false, strict: false })
  const coercing = new Ajv({ allErrors: false, coerceTypes: 'array', useDefaults: true, removeAdditional: false, strict: false })
  for (const ajv of [strict, coercing]) {
    addFormats(ajv)
    // RFC 3339 allows what JavaScript and PostgreSQL cannot hold: a leap second (23:59:60,
    // an Invalid Date) and the year 0000. Such a time is a validation failure, not a 500.
    const base = ajv.formats['date-time'] as { validate: (s: string) => boolean; compare: (a: string, b: string) => number | undefined }
    ajv.addFormat('date-time', { ...base, validate: (s: string) => base.validate(s) && !s.startsWith('0000') && !Number.isNaN(Date.parse(s)) })
  }
  return ({ schema, httpPart }: { schema: object; httpPart?: string }) => {
    const body = httpPart === 'body'
    const validate = (body ? strict : coercing).compile(schema)
    // After the schema (query and path values are coerced by then): text without NUL or
    // unpaired surrogates, numbers in the safe range (infra/input-hygiene.ts).
    const check = (data: unknown) => {
      // A POST without a body is checked as an empty object, so optional-only bodies pass.
      const value = body ? (data ?? {}) : data
      if (!validate(value)) {
        check.errors = validate.errors
        return false
      }
      const flaw = findFlaw(value)
      check.errors = flaw ? [asValidationError(flaw)] : null
      return flaw === null
    }
    check.errors = null as unknown
    return check as never
  }
}

/**
 * `Content-Type: application/json` with an empty body (what `fetch` sends for a bodiless
 * POST with JSON headers) is no body, not a parse error; anything else parses as before,
 * with Fastify's prototype-poisoning checks, whose refusal says what it refused (Fastify
 * calls it "not valid JSON", which it is).
 */
function acceptEmptyJson(app: FastifyInstance) {
  const parseJson = app.getDefaultJsonParser('error', 'error')
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    if ((body as string).trim() === '') return done(null, undefined)
    parseJson(req, body as string, (err, parsed) => {
      if (err && isJson(body as string)) return done(new AppError(400, 'BAD_REQUEST', 'The body holds a key that is never accepted: "__proto__", or "constructor" holding "prototype".'), undefined)
      done(err, parsed)
    })
  })
}

/** The services of every feature, without routes or hooks (a worker-only process, the CLI). */
export async function buildCore(deps: AppDeps): Promise<TesseraCore> {
  const app = Fastify({ logger: { ...loggerOptions(deps.config.logLevel), ...(deps.logStream ? { stream: deps.logStream } : {}) } })
  installErrorHandler(app)
  await app.register(infra, deps)
  await app.register(audit)
  await app.register(settings)
  await app.register(sessions, { http: false })
  await app.register(platforms, { http: false })
  await app.register(auth, { http: false })
  await app.register(presence)
  await app.register(locks, { http: false })
  await app.register(alerts, { http: false })
  await app.register(uploads, { http: false })
  let closing: Promise<void> | undefined
  return {
    app,
    ctx: partsOf(app),
    close: () => {
      // BullMQ holds its own Redis connections: they must go too, or the process lingers.
      closing ??= app.close().then(() => app.queues.close())
      return closing
    },
  }
}

/** The security headers of every answer (quality S9), worked out once (infra/security-headers.ts). */
export function securityHeadersOf(config: Config) {
  return securityHeaders({
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
}

export async function buildApp(deps: AppDeps): Promise<Tessera> {
  const { config } = deps
  const headers = await securityHeadersOf(config)
  const app = Fastify({
    logger: { ...loggerOptions(config.logLevel), ...(deps.logStream ? { stream: deps.logStream } : {}) },
    childLoggerFactory: lazyRequestLogger,
    genReqId: (req) => {
      const given = req.headers['x-request-id']
      return typeof given === 'string' && /^[\w.:-]{1,100}$/.test(given) ? given : randomUUID()
    },
    bodyLimit: 64 * 1024,
    trustProxy: config.trustProxy,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // Refusals before routing, in the contract's shape with the same headers (infra/pre-route.ts).
    frameworkErrors: frameworkErrors(headers, (req, reply) => setCorsHeaders(req, reply, config.allowedOrigins), MAX_PARAM_LENGTH),
    clientErrorHandler: clientErrorHandler(headers),
    ajv: { customOptions: { strict: false } },
    // Node looks for requests past their limits this often (its default, 30 s, would let a
    // request whose headers never end wait up to 50 s instead of 20).
    http: { connectionsCheckingInterval: 2_000 },
  })
  app.server.headersTimeout = ARRIVAL_LIMITS.headersMs
  await app.register(infra, deps)
  await httpBasics(app, headers)
  // In layer order; auth adds, ahead of every route, CORS, the rate limits and the Origin check.
  await app.register(audit)
  await app.register(settings)
  await app.register(sessions)
  await app.register(platforms)
  await app.register(auth)
  await app.register(presence)
  await app.register(locks)
  await app.register(alerts)
  await app.register(uploads)
  await app.register(realtime)
  await app.register(admin)
  await app.register(analytics)
  await app.register(ops)
  await app.register(web)

  let closing: Promise<void> | undefined
  return {
    app,
    ctx: partsOf(app),
    hub: app.hub,
    locks: app.locks,
    close: () => {
      closing ??= (async () => {
        await app.close()
        await app.hub.close()
        await app.adminFeed.close()
        await app.queues.close()
      })()
      return closing
    },
  }
}

/** What every route shares: validation, the error shape, request ids, timing, cookies, headers, the OpenAPI document. */
async function httpBasics(app: FastifyInstance, headers: HeaderList) {
  const { metrics } = app
  app.setValidatorCompiler(validators())
  acceptEmptyJson(app)
  installApiRouteDefaults(app)
  refuseStalledBodies(app, ARRIVAL_LIMITS.bodySilenceMs)
  app.addSchema(ErrorBody)
  installErrorHandler(app)

  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id)
  })
  // close() ends only the keep-alive connections idle at that moment: one whose request was
  // in flight would stay open after its answer and hold the shutdown past its budget (R5).
  let shuttingDown = false
  app.addHook('preClose', async () => {
    shuttingDown = true
  })
  app.addHook('onSend', async (_req, reply) => {
    if (shuttingDown) reply.header('connection', 'close')
  })
  app.addHook('onResponse', async (req, reply) => {
    metrics.httpDuration.observe(
      { method: req.method, route: req.routeOptions.url ?? 'unmatched', status: `${Math.floor(reply.statusCode / 100)}xx` },
      reply.elapsedTime / 1000,
    )
  })

  await app.register(cookie)
  installSecurityHeaders(app, headers)
  // Before any route, so that it sees them all.
  await app.register(swagger, {
    openapi: {
      info: { title: 'Tessera', description: 'Real-time session service: HTTP API. The WebSocket protocol is in docs/realtime.md.', version: '0.1.0' },
      components: { securitySchemes: { session: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE }, csrf: { type: 'apiKey', in: 'header', name: 'X-CSRF-Token' } } },
      security: [{ session: [], csrf: [] }],
    },
    refResolver: { buildLocalReference: (json, _base, _frag, i) => (json.$id as string) ?? `def-${i}` },
  })
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true })
}
