// The older SessionSync surface: `window.sessionSync` and CustomEvents on `window`, as thin
// wrappers over a SessionClient, for pages written before the SDK.
import type { SessionClient } from './client.js'

export interface SessionSync {
  syncSessionState(): ReturnType<SessionClient['sync']>
  validateSession(): ReturnType<SessionClient['validate']>
  notifyPlatformSwitch(platformId: number, name: string): ReturnType<SessionClient['notifyPlatformSwitch']>
  getTabId(): string
  getPerformanceMetrics(): ReturnType<SessionClient['metrics']>
}

/** Installs `window.sessionSync` and re-dispatches the client's events as CustomEvents. */
export function installCompat(client: SessionClient, target: EventTarget & { sessionSync?: SessionSync }): void {
  target.sessionSync = {
    syncSessionState: () => client.sync(),
    validateSession: () => client.validate(),
    notifyPlatformSwitch: (platformId, name) => client.notifyPlatformSwitch(platformId, name),
    getTabId: () => client.tabId,
    getPerformanceMetrics: () => client.metrics(),
  }
  const forward = (name: string) => (detail: unknown) => target.dispatchEvent(new CustomEvent(name, { detail }))
  client.on('state', forward('sessionStateChanged'))
  client.on('platformSwitched', forward('platformSwitched'))
  client.on('expired', forward('sessionExpired'))
}
