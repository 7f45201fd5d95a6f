// pino options shared by the API and the workers. Secrets never reach a log line.
import type { LoggerOptions } from 'pino'

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
