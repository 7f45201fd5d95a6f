// The SDK's one error type: the server's `error.code` (or one of the SDK's own codes).
import type { ClientErrorCode, ErrorCode } from '../../src/realtime/protocol.js'

export class SessionError extends Error {
  constructor(
    readonly code: ErrorCode | ClientErrorCode,
    message: string,
    /** The HTTP status; 0 when there was no answer. */
    readonly status = 0,
    /** The error object's other fields (`retryAfterSeconds`, `reason`, `current`, …). */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message)
    this.name = 'SessionError'
  }
}
