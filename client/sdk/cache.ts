// What a new tab may show before the server answers: the non-sensitive part of the last
// state, in localStorage. Never a token, never the CSRF token, never the e-mail address.
import type { Platform, SessionState } from '../../src/realtime/protocol.js'

export interface CachedState {
  sessionId: string
  user: { id: number; username: string; role: string }
  platform: Platform | null
  status: 'active' | 'idle'
  seq: number
  version: number
}

/** What the SDK needs of `localStorage`. */
export interface StorageLike {
  getItem(key: string): string | null
  setItem(key: string, value: string): void
  removeItem(key: string): void
}

const KEY = 'tessera:state'

export function cacheable(state: SessionState): CachedState {
  const { id, username, role } = state.user
  return { sessionId: state.session.id, user: { id, username, role }, platform: state.platform, status: state.session.status, seq: state.seq, version: state.version }
}

export function readCache(storage: StorageLike | null): CachedState | null {
  try {
    const raw = storage?.getItem(KEY)
    return raw ? (JSON.parse(raw) as CachedState) : null
  } catch {
    return null
  }
}

export function writeCache(storage: StorageLike | null, state: SessionState | null): void {
  try {
    if (state) storage?.setItem(KEY, JSON.stringify(cacheable(state)))
    else storage?.removeItem(KEY)
  } catch {
    // Storage full or disabled (private mode): the cache is only a head start.
  }
}
