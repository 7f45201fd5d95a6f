// Applying the session's logged events: seq order, duplicates, gaps, the version guard.
import type { LoggedMessage, SessionState } from '../../src/realtime/protocol.js'
import { TERMINAL_CLOSE } from '../../src/realtime/protocol.js'

/**
 * What to do with a logged event given the last seq applied: `apply` it, drop a
 * `duplicate`, or `resume` because events are missing before it. Terminal events and
 * resyncs are applied whatever their seq: after Redis lost its data a seq can restart.
 */
export function verdict(message: LoggedMessage, lastSeq: number): 'apply' | 'duplicate' | 'resume' {
  if (message.type in TERMINAL_CLOSE) return 'apply'
  if (message.type === 'session.state' && message.resync) return 'apply'
  if (message.seq <= lastSeq) return 'duplicate'
  return message.seq === lastSeq + 1 ? 'apply' : 'resume'
}

/** The state after a non-terminal logged event. A switch older than the state held is ignored. */
export function applyEvent(state: SessionState, message: LoggedMessage): SessionState {
  const at = { seq: message.seq }
  switch (message.type) {
    case 'session.state':
      return { ...message.state, seq: message.seq }
    case 'platform.switched':
      if (message.version <= state.version) return { ...state, ...at }
      return { ...state, ...at, platform: message.platform, version: message.version }
    case 'session.idle':
    case 'session.active':
      return {
        ...state,
        ...at,
        session: { ...state.session, status: message.type === 'session.idle' ? 'idle' : 'active', lastActivity: message.lastActivity },
      }
    case 'session.idle_warning':
      return { ...state, ...at, session: { ...state.session, idleExpiresAt: message.expiresAt } }
    default:
      return { ...state, ...at }
  }
}
