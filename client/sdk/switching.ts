// Single-flight across the tabs of one browser: the Web Locks API grants a lock to one tab
// at a time, and `ifAvailable` refuses at once instead of queueing.
import { CLIENT_ERRORS } from '../../src/realtime/protocol.js'
import { SessionError } from './errors.js'

/** What the SDK needs of `navigator.locks`. */
export interface LockManagerLike {
  request<T>(name: string, options: { ifAvailable: boolean }, callback: (lock: unknown) => Promise<T>): Promise<T>
}

export const inProgress = () => new SessionError(CLIENT_ERRORS.switchInProgress, 'A platform switch is already in progress; it decides.')

/**
 * Runs `work` unless another run under `name` is pending in any tab, in which case it
 * rejects at once with SWITCH_IN_PROGRESS. Without Web Locks (old browsers, Node) `held`
 * keeps the guarantee for this tab alone.
 */
export function singleFlight<T>(locks: LockManagerLike | undefined, held: Set<string>, name: string, work: () => Promise<T>): Promise<T> {
  if (locks) return locks.request(name, { ifAvailable: true }, (lock) => (lock ? work() : Promise.reject(inProgress())))
  if (held.has(name)) return Promise.reject(inProgress())
  held.add(name)
  return work().finally(() => held.delete(name))
}
