// Why a session ended, as the client tells the page: from a 401 of the server (which names
// the end reason) or, when the server cannot be asked, from the socket's close code.
import { CLOSE, type EndReason, TERMINATION_MESSAGES } from '../../src/realtime/protocol.js'
import type { SessionError } from './errors.js'
import type { Ending } from './types.js'

/**
 * What a refusal means: the session's ending, `signedOut` (nobody behind the cookie, and
 * the page was not watching a live session), or null when it is no refusal of the session.
 */
export function endingOfRefusal(err: unknown, wasLive: boolean): Ending | 'signedOut' | null {
  const e = err as SessionError
  if (e?.status !== 401) return null
  const reason = e.details?.reason as EndReason | undefined
  if (e.code === 'SESSION_EXPIRED') return { kind: 'expired', reason: reason === 'lifetime' ? 'lifetime' : 'idle_timeout' }
  if (e.code === 'SESSION_TERMINATED' && reason && reason !== 'logout') {
    const message = TERMINATION_MESSAGES[reason as keyof typeof TERMINATION_MESSAGES] ?? e.message
    const note = typeof e.details?.note === 'string' ? e.details.note : undefined
    return { kind: 'terminated', reason, message, ...(note ? { note } : {}) }
  }
  return wasLive ? { kind: 'loggedOut', byTabId: null } : 'signedOut'
}

/** The ending a final close code stands for, when the server cannot say more. */
export function endingOfClose(code: number): Ending {
  if (code === CLOSE.expired) return { kind: 'expired', reason: 'idle_timeout' }
  if (code === CLOSE.terminated) return { kind: 'terminated', reason: 'admin', message: TERMINATION_MESSAGES.admin }
  return { kind: 'loggedOut', byTabId: null }
}
