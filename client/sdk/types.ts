// The client's public types: its phases, endings, events and options.
import type { EndReason, LockOwner, Platform, ServerMessage, SessionState } from '../../src/realtime/protocol.js'
import type { SessionClient } from './client.js'
import type { SessionEnvironment } from './environment.js'

export type Connectivity = 'online' | 'reconnecting' | 'offline'
/** `signedOut`: no session behind the cookie; `ended`: it ended while this page watched. */
export type Phase = 'idle' | 'starting' | 'live' | 'signedOut' | 'ended'

export interface Expired {
  reason: 'idle_timeout' | 'lifetime'
}
export interface Terminated {
  reason: EndReason
  message: string
  note?: string
}
export interface LoggedOut {
  byTabId: string | null
}
export type Ending = ({ kind: 'expired' } & Expired) | ({ kind: 'terminated' } & Terminated) | ({ kind: 'loggedOut' } & LoggedOut)

export interface IdleWarning {
  secondsLeft: number
  expiresAt: string
}

export interface SessionEvents {
  /** Anything a page shows changed: state, connection, pending switch, idle warning, phase. */
  change: SessionClient
  state: SessionState
  platformSwitched: { platform: Platform | null; previousPlatform: Platform | null; version: number; byTabId: string | null }
  idleWarning: IdleWarning
  expired: Expired
  terminated: Terminated
  loggedOut: LoggedOut
  connection: Connectivity
  locksReleased: { resources: string[]; sessionId: string; reason: string }
  lockAcquired: { resource: string; owner: LockOwner }
  notice: Extract<ServerMessage, { type: 'user.notice' }>
  /** A switch failed and was reverted (in whichever tab of the browser made it). */
  switchFailed: { platformId: number; error: { code: string; message: string } }
  /** Another tab of this browser signed in: a signed-out page may start again. */
  signedIn: undefined
  /** Frames of the admin live feed, for the dashboard. */
  admin: Extract<ServerMessage, { type: 'admin.snapshot' | 'admin.delta' | 'admin.alert' }>
}

export interface SessionClientOptions {
  /** Where Tessera answers; the page's own origin when empty. */
  baseUrl?: string
  onExpired?: (e: Expired) => void
  onTerminated?: (e: Terminated) => void
  /** The view this tab shows, sent with `hello` and heartbeats (default: path and hash). */
  view?: () => string
  env?: Partial<SessionEnvironment>
}

/** What tabs of one browser tell each other. Nothing secret: no token, no CSRF token. */
