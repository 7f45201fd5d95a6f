// session.state (a role change, for example) carries the state version it was read at,
// so a state read before a newer switch can never step the tabs back past it.
import t from 'tap'
import { publishSessionState } from '../../src/realtime/session-state.js'
import type { AuthContext } from '../../src/sessions/service.js'
import { build } from '../helpers/app.js'
import { listen, type Message, openTab } from '../helpers/ws.js'

/** The state a tab holds after a frame that carries one. */
const stateIn = (m: Message) => (m.type === 'session.state' ? (m.state as { platform: { id: number } | null; version: number; user: { role: string } }) : null)

t.test('a role change whose state was read before a switch does not step the tabs back past it', async (t) => {
  // issue 12, defect 14: session.state was published with version 0, past the version guard.
  const app = await build(t)
  const { id: userId, platformIds } = await app.user('ada', { platforms: ['P0', 'P1'] })
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const { tab } = await openTab(address, ada.sid!, { tabId: 'A' })
  const { ctx } = app

  // What a role change does: commit, refresh the cached record, then tell the tabs. Its
  // state is read just before a switch commits and is published just after it.
  await app.resources.database.sql`update users set role = 'reviewer' where id = ${userId}`
  await ctx.sessions.refreshUser(userId)
  let raced = false
  const sessions = {
    byId: (id: string) => ctx.sessions.byId(id),
    async stateOf(auth: AuthContext) {
      const state = await ctx.sessions.stateOf(auth)
      if (!raced) {
        raced = true
        t.equal((await ada.post(`/api/switch_platform/${platformIds[1]}`)).statusCode, 200)
        await tab.type('platform.switched')
      }
      return state
    },
  }
  await publishSessionState({ sessions, settings: ctx.settings, bus: ctx.bus }, ada.sessionId!)
  t.ok(raced, 'the switch came between the read and the publish')

  const last = await ctx.bus.publishSessionEvent(ada.sessionId!, { type: 'session.idle', lastActivity: new Date().toISOString() }, new Date(Date.now() + 3_600_000))
  await tab.next((m) => m.seq === last)
  const switched = tab.messages.find((m) => m.type === 'platform.switched')!
  const after = tab.messages.slice(tab.messages.indexOf(switched) + 1).flatMap((m) => stateIn(m) ?? [])
  t.same(
    after.map((s) => [s.platform?.id, s.version]),
    after.map(() => [platformIds[1], switched.version]),
    'no state after the switch holds an older platform or version',
  )
  t.match(after.at(-1), { user: { role: 'reviewer' } }, 'and the tabs still hear of the new role')
})
