// The contract's error shape, and the one handler that produces it.
import type { FastifyError, FastifyInstance } from 'fastify'
import type { ErrorCode } from '../realtime/protocol.js'

export class AppError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: ErrorCode,
    message: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message)
  }
}

export const serviceUnavailable = (what: string) =>
  new AppError(503, 'SERVICE_UNAVAILABLE', `${what} is unavailable right now; try again in a few seconds.`, {}, { 'retry-after': '2' })

export const validationFailed = (message: string) => new AppError(400, 'VALIDATION_FAILED', message)

/** A paged list's cursor that none of its pages gave out. */
export const badCursor = () => validationFailed('querystring.cursor is not a cursor this route returned')

const REDIS_DOWN = /enableOfflineQueue|Connection is closed|MaxRetriesPerRequest|Stream isn't writeable|Command timed out/i
// 55P03 and 25P03: a lock wait or an idle transaction outlasted its backstop (infra/db.ts).
const PG_DOWN_CODES = new Set(['ECONNREFUSED', 'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED', 'CONNECT_TIMEOUT', '57P01', '57P02', '57P03', 'ECONNRESET', '55P03', '25P03'])

/**
 * Maps an infrastructure failure to 503, or returns null. drizzle wraps the driver's error
 * (DrizzleQueryError, whose message carries the query's parameters) as its `cause`.
 */
export function dependencyFailure(err: unknown): AppError | null {
  for (let e = err as { name?: string; message?: string; code?: string; cause?: unknown } | undefined, depth = 0; e && depth < 3; e = e.cause as typeof e, depth++) {
    if (e instanceof AppError) return e.code === 'SERVICE_UNAVAILABLE' ? e : null
    if (e.name === 'MaxRetriesPerRequestError' || (e.message && REDIS_DOWN.test(e.message))) return serviceUnavailable('Redis')
    if (e.code && PG_DOWN_CODES.has(e.code)) return serviceUnavailable('The database')
  }
  return null
}

/** The error as a log may show it: a query's parameters (a token hash, a password hash) stay out. */
export function loggable(err: unknown): unknown {
  if (!(err instanceof Error) || !('params' in err) || !('query' in err)) return err
  const cause = err.cause instanceof Error ? err.cause : new Error(String(err.cause ?? 'query failed'))
  const shown = new Error(`Failed query: ${cause.message}`)
  shown.name = err.name
  shown.stack = `${err.name}: ${cause.message}\n${(err.stack ?? '').split('\n').filter((line) => line.startsWith('    at ')).join('\n')}\ncaused by: ${cause.stack ?? cause.message}`
  return Object.assign(shown, { query: err.query, code: (cause as { code?: string }).code })
}

/** Where a step that may fail without failing its caller reports the failure. */
export interface WarnLog {
  warn(obj: object, msg: string): void
}

/**
 * Runs a step that follows a commit and that something else repairs if it fails (the next
 * request, the repair pass): the failure is logged, and is not the caller's.
 */
export async function bestEffort(log: WarnLog, what: string, step: () => Promise<unknown>): Promise<void> {
  try {
    await step()
  } catch (err) {
    log.warn({ err: loggable(err) }, `${what} failed after the commit; it is repaired later`)
  }
}

/** What a schema pattern asks for, in words: a raw regular expression helps nobody. */
const PATTERNS: Record<string, string> = {
  '^https?://[^\\s/$.?#][^\\s]*$': 'must be an http:// or https:// URL, such as https://mastodon.social',
  '^[A-Za-z0-9_.@-]+$': 'may hold only letters A–Z and a–z, digits and the characters . _ @ -',
  '^[a-z][a-z0-9_-]{0,31}$': 'must be a role name: a lower-case letter, then up to 31 lower-case letters, digits, _ or -',
  '^[1-9][0-9]{0,9}$': 'must be a user id (a positive whole number)',
}

interface AjvError {
  instancePath: string
  keyword: string
  params: Record<string, unknown>
  message?: string
}

/**
 * The first failure as words a person can act on: a choice names its allowed values
 * (`must be one of "active", "idle"`), a pattern says what it wants. Shared with the
 * WebSocket message parser.
 */
export function describeFailure(errors: readonly AjvError[]): string {
  const first = errors[0]!
  const params = first.params
  if (first.keyword === 'const' || first.keyword === 'enum') {
    const allowed = errors
      .filter((e) => e.instancePath === first.instancePath && (e.keyword === 'const' || e.keyword === 'enum'))
      .flatMap((e) => (e.keyword === 'const' ? [e.params.allowedValue] : (e.params.allowedValues as unknown[])))
    const list = [...new Set(allowed.map((v) => JSON.stringify(v)))]
    return list.length === 1 ? `must be ${list[0]}` : `must be one of ${list.join(', ')}`
  }
  if (first.keyword === 'pattern') return PATTERNS[String(params.pattern)] ?? 'is not in the accepted format'
  return first.message ?? 'is invalid'
}

function describeValidation(err: FastifyError): string {
  const failures = err.validation ?? []
  const first = failures[0]
  if (!first) return err.message
  const where = err.validationContext ?? 'body'
  const { params } = first
  const path = first.instancePath.replace(/^\//, '').replaceAll('/', '.')
  // A missing or unknown property is named with its parent's path: body.failedLogin.bogus.
  const leaf = params.missingProperty ?? params.additionalProperty
  const field = [path, leaf].filter((part) => part !== undefined && part !== '').join('.') || undefined
  const name = field ? `${where}.${String(field)}` : where
  if (params.missingProperty) return `${name} is required`
  if (params.additionalProperty) return `${name} is not an accepted field`
  return `${name} ${describeFailure(failures)}`
}

/** `1 device`, `3 devices`: counts in messages agree in number. */
export const count = (n: number, noun: string, plural = `${noun}s`) => `${n} ${n === 1 ? noun : plural}`

export function errorBody(code: ErrorCode, message: string, extra: Record<string, unknown> = {}) {
  return { error: { code, message, ...extra } }
}

export function installErrorHandler(app: FastifyInstance) {
  app.setErrorHandler((err: FastifyError | AppError, req, reply) => {
    // The client went away mid-request (an upload cut off): nobody is left to answer, and
    // nothing of ours failed (its ECONNRESET is not the database's).
    if (req.raw.aborted) {
      req.log.info({ err: { message: err.message } }, 'the client went away before its answer')
      return reply.code(400).send(errorBody('BAD_REQUEST', 'The request ended before its body arrived.'))
    }
    const known = err instanceof AppError ? err : dependencyFailure(err)
    if (known) {
      if (known.statusCode >= 500) req.log.warn({ err: loggable(err) }, known.message)
      return reply
        .code(known.statusCode)
        .headers(known.headers)
        .send(errorBody(known.code, known.message, known.extra))
    }
    const fe = err as FastifyError
    if (fe.validation) return reply.code(400).send(errorBody('VALIDATION_FAILED', describeValidation(fe)))
    if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      const takes = (req.routeOptions.schema?.consumes as string[] | undefined) ?? ['application/json']
      return reply.code(415).send(errorBody('UNSUPPORTED_MEDIA_TYPE', `This route takes a body of type ${takes.join(' or ')}: send it with Content-Type: ${takes[0]}.`))
    }
    if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
      const code = fe.statusCode === 413 ? 'PAYLOAD_TOO_LARGE' : fe.statusCode === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : fe.statusCode === 404 ? 'NOT_FOUND' : 'BAD_REQUEST'
      return reply.code(fe.statusCode).send(errorBody(code, fe.message))
    }
    req.log.error({ err: loggable(err) }, 'unhandled error')
    return reply.code(500).send(errorBody('INTERNAL', 'Something went wrong on our side; the error has been logged.'))
  })
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send(errorBody('NOT_FOUND', `No route ${req.method} ${req.url.split('?')[0]}`)),
  )
}
