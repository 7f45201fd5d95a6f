// The platform a client runs on: the browser's by default, replaceable (tests run tabs in
// Node with `ws` sockets, an in-memory lock manager and storage).
import type { StorageLike } from './cache.js'
import type { SocketLike } from './connection.js'
import type { Fetch } from './http.js'
import type { LockManagerLike } from './switching.js'

export interface ChannelLike {
  postMessage(message: unknown): void
  onmessage: ((event: { data: unknown }) => void) | null
  close(): void
}

/** The platform this client runs on; the browser's by default, replaceable for tests and Node. */
export interface SessionEnvironment {
  fetch: Fetch
  socket: (url: string) => SocketLike
  locks?: LockManagerLike
  channel?: (name: string) => ChannelLike
  storage?: StorageLike | null
  /** Where input, `online` and `offline` are heard, and the compatibility events dispatched. */
  window?: EventTarget
  document?: EventTarget & { visibilityState?: string }
  online?: () => boolean
  random?: () => number
}

function storageOf(g: { localStorage?: StorageLike }): StorageLike | null {
  try {
    return g.localStorage ?? null
  } catch {
    return null
  }
}

export function browserEnvironment(): SessionEnvironment {
  const g = globalThis as unknown as {
    fetch: Fetch
    WebSocket: new (url: string) => SocketLike
    navigator?: { locks?: LockManagerLike; onLine?: boolean }
    BroadcastChannel?: new (name: string) => ChannelLike
    localStorage?: StorageLike
    document?: EventTarget & { visibilityState?: string }
    addEventListener?: unknown
  }
  return {
    fetch: (input, init) => g.fetch(input, init),
    socket: (url) => new g.WebSocket(url),
    locks: g.navigator?.locks,
    channel: g.BroadcastChannel ? (name) => new g.BroadcastChannel!(name) : undefined,
    storage: storageOf(g),
    window: typeof g.addEventListener === 'function' ? (g as unknown as EventTarget) : undefined,
    document: g.document,
    online: () => g.navigator?.onLine !== false,
    random: Math.random,
  }
}
