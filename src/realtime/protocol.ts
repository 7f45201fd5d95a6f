// The WebSocket protocol's constants (docs/realtime.md), shared by the server and client/.

export const CLOSE = {
  terminated: 4001,
  expired: 4002,
  loggedOut: 4003,
  tooManyBadMessages: 4400,
  unauthenticated: 4401,
  heartbeatTimeout: 4408,
  goingAway: 1001,
  tooLarge: 1009,
  /** The server failed while handling one socket's message: reconnect with backoff. */
  internalError: 1011,
  /** A slow consumer, or "resume needed" (a catch-up that could not read the log). */
  slowConsumer: 1013,
} as const

/** Close codes after which a client must not reconnect on its own. */
export const FINAL_CLOSE_CODES: readonly number[] = [CLOSE.terminated, CLOSE.expired, CLOSE.loggedOut, CLOSE.tooManyBadMessages, CLOSE.unauthenticated]

/** Every message type a tab may send (realtime.md, "Client → server"); the fuzzers walk them all. */
export const CLIENT_MESSAGES = ['hello', 'heartbeat', 'activity', 'view', 'admin.subscribe', 'admin.unsubscribe', 'ping'] as const
export type ClientMessageType = (typeof CLIENT_MESSAGES)[number]

export const SERVER_MESSAGES = {
  welcome: 'welcome',
  sessionState: 'session.state',
  platformSwitched: 'platform.switched',
  sessionIdle: 'session.idle',
  sessionActive: 'session.active',
  idleWarning: 'session.idle_warning',
  expired: 'session.expired',
  terminated: 'session.terminated',
  loggedOut: 'session.logged_out',
  userNotice: 'user.notice',
  locksReleased: 'locks.released',
  lockAcquired: 'lock.acquired',
  configChanged: 'config.changed',
  pong: 'pong',
  error: 'error',
  adminSnapshot: 'admin.snapshot',
  adminDelta: 'admin.delta',
  adminAlert: 'admin.alert',
} as const

/** The terminal events, and the close code that follows each. */
export const TERMINAL_CLOSE: Record<string, number> = {
  'session.expired': CLOSE.expired,
  'session.terminated': CLOSE.terminated,
  'session.logged_out': CLOSE.loggedOut,
}

export const WS_ERRORS = { badMessage: 'BAD_MESSAGE', forbidden: 'FORBIDDEN', unavailable: 'SERVICE_UNAVAILABLE' } as const

/**
 * Every `error.code` the HTTP API answers with (docs/api.md) and the socket's `error` frames
 * carry. `AppError` only takes these, so the server cannot drift from what clients know.
 */
export const ERROR_CODES = [
  'ACCOUNT_LOCKED',
  'ALERT_NOT_FOUND',
  'BAD_MESSAGE',
  'BAD_REQUEST',
  'CSRF_INVALID',
  'FILE_TOO_LARGE',
  'FORBIDDEN',
  'HEADERS_TOO_LARGE',
  'INTERNAL',
  'INVALID_CREDENTIALS',
  'INVALID_TOKEN',
  'LAST_ADMIN',
  'LOCK_HELD',
  'LOCK_NOT_FOUND',
  'NOT_FOUND',
  'NOT_LOCK_OWNER',
  'ORIGIN_NOT_ALLOWED',
  'PAYLOAD_TOO_LARGE',
  'PLATFORM_INACTIVE',
  'PLATFORM_NOT_FOUND',
  'REQUEST_TIMEOUT',
  'RATE_LIMITED',
  'SERVICE_UNAVAILABLE',
  'SESSION_ALREADY_ENDED',
  'SESSION_EXPIRED',
  'SESSION_LIMIT_REACHED',
  'SESSION_NOT_FOUND',
  'SESSION_TERMINATED',
  'UNAUTHENTICATED',
  'UNSUPPORTED_FILE_TYPE',
  'UNSUPPORTED_MEDIA_TYPE',
  'UPGRADE_REQUIRED',
  'UPLOAD_NOT_FOUND',
  'USERNAME_TAKEN',
  'USER_NOT_FOUND',
  'VALIDATION_FAILED',
  'VERSION_CONFLICT',
  'WEAK_PASSWORD',
] as const
export type ErrorCode = (typeof ERROR_CODES)[number]

/** Codes the browser SDK raises itself; the server never sends them. */
export const CLIENT_ERRORS = {
  /** A platform switch is already pending in this browser (any tab): the first one counts. */
  switchInProgress: 'SWITCH_IN_PROGRESS',
  /** The request never got an answer (offline, server unreachable). */
  network: 'NETWORK_ERROR',
  /** The session has ended; sign in again. */
  ended: 'SESSION_ENDED',
} as const
export type ClientErrorCode = (typeof CLIENT_ERRORS)[keyof typeof CLIENT_ERRORS]

// The shapes on the wire, as plain types for client/ (the server builds them from its
// TypeBox schemas; test/client/wire-types.test.ts keeps the two the same).

export interface Platform {
  id: number
  name: string
  type: 'pixelfed' | 'mastodon' | 'other'
  instanceUrl: string
  isDefault: boolean
}

export interface SessionState {
  user: { id: number; username: string; email: string | null; role: string }
  platform: Platform | null
  session: { id: string; createdAt: string; lastActivity: string; expiresAt: string; idleExpiresAt: string; status: 'active' | 'idle'; tabs: number }
  version: number
  seq: number
  timestamp: string
}

export interface SessionView {
  id: string
  userId: number
  username: string
  role: string
  loginAt: string
  lastActivity: string
  currentView: string | null
  ip: string | null
  userAgent: string | null
  device: { browser: string | null; os: string | null; type: string }
  status: 'active' | 'idle'
  tabs: number
  platform: { id: number; name: string } | null
}

export interface LockOwner {
  sessionId: string
  userId: number
  username: string
}

/** A file uploaded to a session (POST /api/session/uploads). */
export interface Upload {
  id: string
  key: string
  name: string
  size: number
  contentType: string
  uploadedAt: string
}

/** A failed-login, lockout or anomaly alert (GET /admin/alerts, admin.alert). */
export interface Alert {
  id: number
  type: string
  userId: number | null
  username: string | null
  message: string
  data: Record<string, unknown>
  createdAt: string
  acknowledged: boolean
  acknowledgedAt: string | null
  acknowledgedBy: number | null
}

/** The session's end reasons (docs/api.md): `expired` for the first two, `terminated` for the rest. */
export type EndReason =
  | 'idle_timeout'
  | 'lifetime'
  | 'logout'
  | 'logout_all'
  | 'admin'
  | 'session_limit'
  | 'compromised'
  | 'password_changed'
  | 'revoked_by_user'
  | 'user_disabled'

/** Fields every logged event has. */
interface Logged {
  seq: number
  at: string
}

export type ServerMessage =
  | {
      type: 'welcome'
      sessionId: string
      tabId: string
      seq: number
      state: SessionState
      heartbeatIntervalMs: number
      idleAfterMs: number
      resumed: boolean
      replayed: number
      syncCheckIntervalMs?: number
    }
  | ({ type: 'session.state'; state: SessionState; resync?: boolean } & Logged)
  | ({ type: 'platform.switched'; platform: Platform | null; previousPlatform: Platform | null; version: number; byTabId: string | null } & Logged)
  | ({ type: 'session.idle' | 'session.active'; lastActivity: string } & Logged)
  | ({ type: 'session.idle_warning'; expiresAt: string; secondsLeft: number } & Logged)
  | ({ type: 'session.expired'; reason: 'idle_timeout' | 'lifetime' } & Logged)
  | ({ type: 'session.terminated'; reason: EndReason; message: string; note?: string } & Logged)
  | ({ type: 'session.logged_out'; byTabId: string | null } & Logged)
  | { type: 'user.notice'; kind: 'new_login' | 'session_ended_elsewhere'; device: SessionView['device']; ip: string | null; sessionId: string; reason?: EndReason; at: string }
  | { type: 'locks.released'; resources: string[]; sessionId: string; reason: string; at: string }
  | { type: 'lock.acquired'; resource: string; owner: LockOwner; at: string }
  | { type: 'config.changed'; heartbeatIntervalMs: number; idleAfterMs: number; at: string }
  | { type: 'pong'; id?: string | number }
  | { type: 'error'; code: ErrorCode; message: string }
  | { type: 'admin.snapshot'; sessions: SessionView[]; total: number; at: string }
  | { type: 'admin.delta'; upserted: SessionView[]; removed: { id: string; reason: string }[]; at: string }
  | { type: 'admin.alert'; alert: Alert; at: string }

/** A message of the session's event log (it has a `seq`). */
export type LoggedMessage = Extract<ServerMessage, { seq: number; at: string }>

/** The `message` of `session.terminated` for each reason (an `admin` one may add a `note`). */
export const TERMINATION_MESSAGES = {
  admin: 'Session terminated by administrator',
  session_limit: 'Signed out: this account signed in on another device and reached its session limit',
  password_changed: 'Signed out because the password was changed',
  compromised: 'Signed out because this session looked like it was used from another browser',
  user_disabled: 'Signed out because the account was disabled',
  logout_all: 'Signed out everywhere',
  revoked_by_user: 'Signed out from another device',
} as const satisfies Record<Exclude<EndReason, 'idle_timeout' | 'lifetime' | 'logout'>, string>

/** The SessionView columns the admin's session list sorts by (GET /admin/sessions `sort`, admin.subscribe). */
export const SORT_COLUMNS = [
  'id',
  'userId',
  'username',
  'role',
  'loginAt',
  'lastActivity',
  'currentView',
  'ip',
  'userAgent',
  'device',
  'status',
  'tabs',
  'platform',
] as const
