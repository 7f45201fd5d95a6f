// Tabs in real Chromium through a server restart and a network cut: they show that they are
// reconnecting, then resume with no missed event.
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { PASSWORD } from '../helpers/app.js'
import { Device, launchChromium, servedApp } from '../helpers/browser.js'

const browser = await launchChromium(t)

interface Metrics {
  events: number
  gaps: number
  duplicates: number
  resyncs: number
  reconnects: number
  lastSeq: number
}

t.test('a server restart: tabs show "reconnecting", then resume with the event they missed', async (t) => {
  const { app, base } = await servedApp(t)
  const { platformIds } = await app.user('ada', { platforms: ['Pixelfed', 'Mastodon', 'Archive'] })
  const device = await Device.open(t, browser, base)
  const tabs = await device.signedInTabs('ada', PASSWORD, 3)
  await tabs[0]!.getByRole('button', { name: 'Use Mastodon' }).click()
  for (const tab of tabs) await tab.getByTestId('active-platform').and(tab.locator('[data-pending=false]')).filter({ hasText: 'Mastodon' }).waitFor()

  // The headers this browser sends, for a request of its own through the other node (the session is bound to them).
  const [request] = await Promise.all([tabs[0]!.waitForRequest('**/api/auth/csrf'), tabs[0]!.evaluate("fetch('/api/auth/csrf')")])
  const sent = await request.allHeaders()
  const { port } = app.app.server.address() as AddressInfo
  await app.close()
  for (const tab of tabs) await tab.getByTestId('connection').and(tab.locator('[data-state=reconnecting]')).waitFor()
  t.pass('every tab shows that it is reconnecting')

  // While it is down, the session changes elsewhere: another node takes the switch.
  const other = await app.node()
  const token = await device.token()
  const headers = { cookie: `sid=${token}`, 'user-agent': sent['user-agent']!, 'accept-language': sent['accept-language']! }
  const csrf = await other.app.inject({ method: 'GET', url: '/api/auth/csrf', headers })
  t.equal(csrf.statusCode, 200, csrf.body)
  const switched = await other.app.inject({
    method: 'POST',
    url: `/api/switch_platform/${platformIds[2]}`,
    headers: { ...headers, 'x-csrf-token': csrf.json().csrfToken },
  })
  t.equal(switched.statusCode, 200, 'switched to Archive while the tabs were away')

  const restarted = await app.node()
  await restarted.app.listen({ host: '127.0.0.1', port })
  for (const tab of tabs) {
    await tab.getByTestId('connection').and(tab.locator('[data-state=online]')).waitFor({ timeout: 60_000 })
    await tab.getByTestId('active-platform').filter({ hasText: 'Archive' }).waitFor()
  }
  for (const [i, tab] of tabs.entries()) {
    const m = await tab.evaluate<Metrics>('window.sessionSync.getPerformanceMetrics()')
    t.ok(m.reconnects >= 1, `tab ${i + 1} reconnected`)
    t.equal(m.gaps + m.duplicates + m.resyncs, 0, `tab ${i + 1}: no gap, no duplicate, no resync`)
    t.equal(m.events, 2, `tab ${i + 1} applied both switches, the second one replayed`)
    t.equal(m.lastSeq, 2, `tab ${i + 1} has both switches (seq 2)`)
  }
  t.same(await device.cspViolations(), [], 'no CSP violation')
})

t.test('the network goes away: tabs say "offline", and reconnect at once when it is back', async (t) => {
  const { app, base } = await servedApp(t)
  await app.user('ada', { platforms: ['Pixelfed', 'Mastodon'] })
  const device = await Device.open(t, browser, base)
  const tabs = await device.signedInTabs('ada', PASSWORD, 2)
  await device.context.setOffline(true)
  for (const tab of tabs) await tab.getByTestId('connection').and(tab.locator('[data-state=offline]')).waitFor()
  t.pass('offline')
  await device.context.setOffline(false)
  for (const tab of tabs) await tab.getByTestId('connection').and(tab.locator('[data-state=online]')).waitFor()
  t.pass('online again')
})
