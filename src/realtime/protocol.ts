// The WebSocket protocol's constants (realtime.md), shared by the server and client/.

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
