// The React side's one source of truth: what the SDK client knows, copied in on every change.
import type { Connectivity, Ending, IdleWarning, Phase, Platform, SessionClient, SessionState } from 'tessera/client'

export interface SessionSnapshot {
  phase: Phase
  state: SessionState | null
  connection: Connectivity
  pendingPlatform: Platform | null | undefined
  idleWarning: IdleWarning | null
  ending: Ending | null
  platforms: Platform[]
  error: Error | null
}

export type SessionAction = { type: 'sync'; client: SessionClient } | { type: 'failed'; error: Error } | { type: 'dismissEnding' }

export function snapshotOf(client: SessionClient): SessionSnapshot {
  return {
    phase: client.phase,
    state: client.state,
    connection: client.connection,
    pendingPlatform: client.pendingSwitch ? client.pendingSwitch.platform : undefined,
    idleWarning: client.idleWarning,
    ending: client.ending,
    platforms: client.platforms,
    error: null,
  }
}

export function sessionReducer(current: SessionSnapshot, action: SessionAction): SessionSnapshot {
  switch (action.type) {
    case 'sync': {
      const next = snapshotOf(action.client)
      // An ending stays on screen (the sign-in page shows why) until dismissed or a new sign-in.
      return { ...next, ending: next.ending ?? (next.phase === 'live' ? null : current.ending) }
    }
    case 'failed':
      return { ...current, error: action.error }
    case 'dismissEnding':
      return { ...current, ending: null }
  }
}
