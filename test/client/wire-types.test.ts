// The wire types of src/realtime/protocol.ts (what client/ compiles against) against the
// server's TypeBox schemas: assignable both ways (checked by `tsc` in npm run lint), and a
// real session_state body with exactly the fields the SDK expects.
import t from 'tap'
import type { Static } from 'typebox'
import type { SessionState as WireState, SessionView as WireView } from '../../src/realtime/protocol.js'
import type { SessionState, SessionView } from '../../src/sessions/schemas.js'
import { build } from '../helpers/app.js'

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
const stateMatches: Same<Static<typeof SessionState>, WireState> = true
const viewMatches: Same<Static<typeof SessionView>, WireView> = true

t.test('session_state has exactly the fields of the wire type', async (t) => {
  t.ok(stateMatches && viewMatches, 'the types agree (tsc)')
  const app = await build(t)
  await app.user('ada', { platforms: ['Pixelfed'] })
  const ada = await app.client().signIn('ada')
  const body = (await ada.get('/api/session_state')).json()
  const wire: Record<keyof WireState, true> = { user: true, platform: true, session: true, version: true, seq: true, timestamp: true }
  t.same(Object.keys(body).sort(), Object.keys(wire).sort())
  const session: Record<keyof WireState['session'], true> = { id: true, createdAt: true, lastActivity: true, expiresAt: true, idleExpiresAt: true, status: true, tabs: true }
  t.same(Object.keys(body.session).sort(), Object.keys(session).sort())
  t.same(Object.keys(body.platform).sort(), ['id', 'instanceUrl', 'isDefault', 'name', 'type'])
})
