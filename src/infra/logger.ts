// pino options shared by the API and the workers. Secrets never reach a log line.
import type { FastifyBaseLogger } from 'fastify'
import type { Bindings, ChildLoggerOptions, LogFn, Logger, LoggerOptions } from 'pino'

export const redactPaths = [
  'req.headers.cookie',
  'req.headers.authorization',
  'req.headers["x-csrf-token"]',
  'res.headers["set-cookie"]',
  'password',
  'currentPassword',
  'newPassword',
  'token',
  'csrfToken',
  'ticket',
  '*.password',
  '*.token',
  '*.csrfToken',
]

export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    redact: { paths: redactPaths, censor: '[redacted]' },
    base: { pid: process.pid, service: 'tessera' },
    serializers: {
      // The query string can carry a WebSocket ticket: log the path only.
      req: (req: { method: string; url: string; ip?: string; id?: string }) => ({
        method: req.method,
        url: req.url.split('?')[0],
        ip: req.ip,
      }),
    },
  }
}

type LevelName = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'

/**
 * Fastify's childLoggerFactory: a request's logger that makes pino's child (with the request
 * id) only when the request logs a line at a level that is on. pino's child copies the
 * bindings, serializers and redaction on every request; at the default level every request
 * logs and the child is made at its first line, but at `warn` and above most requests log
 * nothing and no child is made for them. A route with a log level or serializers of its own
 * gets its child at once.
 */
export function lazyRequestLogger(parent: FastifyBaseLogger, bindings: Bindings, opts: ChildLoggerOptions): FastifyBaseLogger {
  if (opts.level !== undefined || opts.serializers !== undefined) return parent.child(bindings, opts)
  return new LazyChild(parent, bindings, opts)
}

class LazyChild implements FastifyBaseLogger {
  private made: FastifyBaseLogger | null = null

  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly bindings: Bindings,
    private readonly opts: ChildLoggerOptions,
  ) {}

  get level(): string {
    return (this.made ?? this.parent).level
  }

  set level(level: string) {
    this.logger().level = level
  }

  fatal(...args: Parameters<LogFn>): void {
    this.log('fatal', args)
  }
  error(...args: Parameters<LogFn>): void {
    this.log('error', args)
  }
  warn(...args: Parameters<LogFn>): void {
    this.log('warn', args)
  }
  info(...args: Parameters<LogFn>): void {
    this.log('info', args)
  }
  debug(...args: Parameters<LogFn>): void {
    this.log('debug', args)
  }
  trace(...args: Parameters<LogFn>): void {
    this.log('trace', args)
  }
  silent(): void {}

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.logger().child(bindings, options)
  }

  private log(level: LevelName, args: Parameters<LogFn>): void {
    if (!isLevelEnabled(this.made ?? this.parent, level)) return
    const made = this.logger()
    Reflect.apply(made[level], made, args)
  }

  private logger(): FastifyBaseLogger {
    this.made ??= this.parent.child(this.bindings, this.opts)
    return this.made
  }
}

/** pino's isLevelEnabled, where the logger has it (a logger handed to Fastify need only have the level methods). */
function isLevelEnabled(logger: FastifyBaseLogger, level: LevelName): boolean {
  const check = (logger as Partial<Pick<Logger, 'isLevelEnabled'>>).isLevelEnabled
  return check ? check.call(logger, level) : true
}
