// The session's public UUID, kept in localStorage (it is not a secret: the token is) so a
// page can show it at once, and checked with the server once per page load.
import { useEffect, useState } from 'react'
import { useSession } from './useSession.js'

const KEY = 'tessera:session-uuid'

export type UUIDStatus = 'unknown' | 'checking' | 'valid' | 'invalid'

function stored(): string | null {
  try {
    return localStorage.getItem(KEY)
  } catch {
    return null
  }
}

function store(uuid: string | null): void {
  try {
    if (uuid) localStorage.setItem(KEY, uuid)
    else localStorage.removeItem(KEY)
  } catch {
    // Storage disabled: the UUID is still shown from the session state.
  }
}

export function useSessionUUID(): { uuid: string | null; status: UUIDStatus } {
  const { client, state, phase } = useSession()
  const current = state?.session.id ?? null
  const [uuid, setUUID] = useState<string | null>(() => current ?? stored())
  const [status, setStatus] = useState<UUIDStatus>('unknown')

  useEffect(() => {
    if (phase !== 'live' || !uuid) return
    let cancelled = false
    setStatus('checking')
    client
      .request<{ validFormat: boolean; exists: boolean }>('POST', '/api/session/validate-uuid', { uuid })
      .then((res) => {
        if (cancelled) return
        const valid = res.validFormat && res.exists
        setStatus(valid ? 'valid' : 'invalid')
        if (!valid) store(null)
      })
      // Rate limited or offline: keep what we have, unchecked.
      .catch(() => !cancelled && setStatus('unknown'))
    return () => {
      cancelled = true
    }
  }, [client, phase, uuid])

  useEffect(() => {
    if (current && current !== uuid) {
      store(current)
      setUUID(current)
    }
    if (phase === 'ended' || phase === 'signedOut') {
      store(null)
      setUUID(null)
    }
  }, [current, phase, uuid])

  return { uuid, status }
}
