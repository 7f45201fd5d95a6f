// Puts one SessionClient under the app: started on mount, its every change dispatched into
// the reducer, so components read one snapshot through useSession().
import { type ReactNode, useEffect, useMemo, useReducer, useState } from 'react'
import { createSessionClient, type SessionClient } from 'tessera/client'
import { SessionContext } from './context.js'
import { sessionReducer, snapshotOf } from './reducer.js'

export function SessionProvider({ client, children }: { client?: SessionClient; children: ReactNode }) {
  const [sdk] = useState(() => client ?? createSessionClient())
  const [snapshot, dispatch] = useReducer(sessionReducer, sdk, snapshotOf)

  useEffect(() => {
    const start = () => sdk.start().catch((error: Error) => dispatch({ type: 'failed', error }))
    const offChange = sdk.on('change', () => dispatch({ type: 'sync', client: sdk }))
    // Another tab signed in: this one follows, unless it is already live.
    const offSignedIn = sdk.on('signedIn', () => {
      if (sdk.phase !== 'live' && sdk.phase !== 'starting') void start()
    })
    void start()
    return () => {
      offChange()
      offSignedIn()
    }
  }, [sdk])

  const value = useMemo(() => ({ ...snapshot, client: sdk, dispatch }), [snapshot, sdk])
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>
}
