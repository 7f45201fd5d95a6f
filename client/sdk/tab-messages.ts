// What the tabs of one browser tell each other over their BroadcastChannel. Nothing secret:
// no token, no CSRF token.
import type { Platform } from '../../src/realtime/protocol.js'
import type { Ending } from './types.js'

export type TabMessage =
  | { k: 'switching'; platform: Platform | null; startedAt: number }
  | { k: 'switched'; ok: boolean; platformId: number; error?: { code: string; message: string } }
  | { k: 'ended'; ending: Ending }
  | { k: 'activity'; at: number }
  | { k: 'stay' }
  | { k: 'signedIn' }
  /** A tab of the session opened or closed: the others re-read the state (its tab count). */
  | { k: 'joined' | 'left' }
