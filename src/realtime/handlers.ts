// What a live tab's messages do: heartbeats and input keep the session active and its view
// current, pings are answered, and admins subscribe to the live feed.
import type { Presence } from '../presence/service.js'
import type { Sessions } from '../sessions/service.js'
import type { ClientMessage } from './messages.js'
import { SERVER_MESSAGES, WS_ERRORS } from './protocol.js'
import type { Tab } from './tab.js'

/** The admin feed, as the hub hands tabs to it (the admin feature plugs it in). */
export interface AdminHooks {
  subscribe(tab: Tab, filter: unknown): Promise<void>
  unsubscribe(tab: Tab): void
  /** Gets each `admin.alert` frame. */
  alert?(frame: string): void
}

export interface HandlerDeps {
  sessions: Pick<Sessions, 'recordView' | 'recordInput' | 'byId'>
  presence: Pick<Presence, 'seeTabs' | 'setView'>
  /** Tabs or view of a session changed: every node's admin feed reloads it. */
  adminChanged(sessionId: string): void
  /** The admin feed, when plugged in. */
  admin(): AdminHooks | undefined
}

export class MessageHandlers {
  constructor(private readonly d: HandlerDeps) {}

  async handle(tab: Tab, m: ClientMessage): Promise<void> {
    const { session } = tab.auth
    switch (m.type) {
      case 'heartbeat': {
        const viewChanged = m.view !== undefined && m.view !== tab.view
        if (viewChanged) {
          tab.view = m.view!
          await this.d.sessions.recordView(session, m.view!, tab.tabId)
        }
        if (tab.isOpen()) await this.d.presence.seeTabs([{ sessionId: session.id, socket: tab, keepUntil: session.expiresAt, view: m.view }])
        if (viewChanged) this.d.adminChanged(session.id)
        if (m.lastInputAt !== undefined && m.lastInputAt > tab.lastInputAt) await this.input(tab, m.lastInputAt)
        return
      }
      case 'activity':
        return this.input(tab, m.at)
      case 'view':
        if (m.view !== tab.view) await this.d.sessions.recordView(session, m.view, tab.tabId)
        tab.view = m.view
        await this.d.presence.setView(session.id, m.view, session.expiresAt)
        this.d.adminChanged(session.id)
        return this.input(tab, Date.now())
      case 'ping':
        tab.sendRaw(JSON.stringify(m.id === undefined ? { type: SERVER_MESSAGES.pong } : { type: SERVER_MESSAGES.pong, id: m.id }))
        return
      case 'admin.subscribe': {
        // The role as it is now, not as it was when the socket opened.
        const current = await this.d.sessions.byId(session.id)
        const admin = this.d.admin()
        if (current?.role !== 'admin' || current.status !== 'active' || !admin) {
          return tab.error(WS_ERRORS.forbidden, 'The admin feed is for administrators.')
        }
        return admin.subscribe(tab, m.filter ?? {})
      }
      case 'admin.unsubscribe':
        this.d.admin()?.unsubscribe(tab)
        return
      case 'hello':
        return
    }
  }

  private async input(tab: Tab, at: number) {
    tab.lastInputAt = Math.max(tab.lastInputAt, at)
    await this.d.sessions.recordInput(tab.auth.session, at)
  }
}
