import { createContext, type Dispatch } from 'react'
import type { SessionClient } from 'tessera/client'
import type { SessionAction, SessionSnapshot } from './reducer.js'

export interface SessionContextValue extends SessionSnapshot {
  client: SessionClient
  dispatch: Dispatch<SessionAction>
}

export const SessionContext = createContext<SessionContextValue | null>(null)
