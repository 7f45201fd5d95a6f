// `session.state` without `resync` (docs/realtime.md): the session's shared state changed in a way
// no other event covers — a role change, for example — so every tab gets the whole state.
import type { Sessions } from '../sessions/service.js'
import type { SettingsService } from '../settings/service.js'
import type { EventBus } from '../infra/bus.js'

export interface SessionStateDeps {
  sessions: Pick<Sessions, 'byId' | 'stateOf'>
  settings: Pick<SettingsService, 'get'>
  bus: Pick<EventBus, 'publishState'>
}

/** Reads and publishes again when a newer state version overtook the read; a few turns suffice even under many switches. */
const ATTEMPTS = 5

/**
 * Publishes one logged `session.state { state }` to every tab of the session, with the
 * state as PostgreSQL and Redis have it now: call it after the change is committed.
 * The Fastify instance is enough (its decorators): `await publishSessionState(app, sessionId)`.
 * Returns the event's seq, or 0 when the session is unknown or has ended.
 */
export async function publishSessionState(d: SessionStateDeps, sessionId: string): Promise<number> {
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const session = await d.sessions.byId(sessionId)
    if (session?.status !== 'active') return 0
    const settings = await d.settings.get()
    const state = await d.sessions.stateOf({ session, tokenHash: '', lastActivity: session.lastActivity, settings })
    // Dropped (0) when a switch published a newer version after this read (or the session ended).
    const seq = await d.bus.publishState(sessionId, state, new Date(session.expiresAt))
    if (seq > 0) return seq
  }
  return 0
}
