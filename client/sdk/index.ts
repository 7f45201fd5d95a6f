// Tessera's browser SDK (the package's `./client` entry): one client per tab keeps the
// session's state in step with the server and with the browser's other tabs.
import { SessionClient } from './client.js'
import type { SessionClientOptions } from './types.js'
import { installCompat } from './compat.js'

export { BACKOFF, backoffDelay } from './backoff.js'
export type { CachedState } from './cache.js'
export type { SessionEnvironment } from './environment.js'
export type { Connectivity, Ending, Expired, IdleWarning, LoggedOut, Phase, SessionClientOptions, SessionEvents, Terminated } from './types.js'
export { SessionClient } from './client.js'
export type { SessionSync } from './compat.js'
export { SessionError } from './errors.js'
export { CLIENT_ERRORS, CLOSE, ERROR_CODES, FINAL_CLOSE_CODES, SERVER_MESSAGES, TERMINATION_MESSAGES } from '../../src/realtime/protocol.js'
export type { Alert, ClientErrorCode, EndReason, ErrorCode, LockOwner, Platform, ServerMessage, SessionState, SessionView, Upload } from '../../src/realtime/protocol.js'

/**
 * The one entry point. In a browser (with `window`) it also installs the SessionSync
 * compatibility surface unless `compat: false`.
 */
export function createSessionClient(options: SessionClientOptions & { compat?: boolean } = {}): SessionClient {
  const client = new SessionClient(options)
  const target = options.env?.window ?? (typeof (globalThis as { document?: unknown }).document === 'object' ? (globalThis as unknown as EventTarget) : undefined)
  if (options.compat !== false && target) installCompat(client, target)
  return client
}
