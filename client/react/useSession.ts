import { useContext } from 'react'
import { SessionContext, type SessionContextValue } from './context.js'

/** The session as the app shows it, and the client to act on it. Inside a SessionProvider only. */
export function useSession(): SessionContextValue {
  const value = useContext(SessionContext)
  if (!value) throw new Error('useSession() needs a <SessionProvider> above it')
  return value
}
