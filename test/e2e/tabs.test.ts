// Three tabs of one browser in real Chromium against a real server: switching, single-flight,
// revert, logout everywhere in the browser, a new tab's first paint, signing out another
// device, no secret in storage or on the channel, accessibility and CSP on every screen.
import t, { type Test } from 'tap'
import type { Page } from 'playwright-core'
import { PASSWORD } from '../helpers/app.js'
import { accessibilityProblems, Device, launchChromium, servedApp } from '../helpers/browser.js'

const browser = await launchChromium(t)

async function threeTabs(t: Test) {
  const { app, base } = await servedApp(t)
  const { platformIds } = await app.user('ada', { platforms: ['Pixelfed', 'Mastodon', 'Archive'] })
  const device = await Device.open(t, browser, base)
  const tabs = await device.signedInTabs('ada', PASSWORD, 3)
  return { app, base, device, tabs, platformIds }
}

const activePlatform = (page: Page) => page.getByTestId('active-platform')

async function showsPlatform(page: Page, name: string) {
  await activePlatform(page).and(page.locator('[data-pending=false]')).filter({ hasText: name }).waitFor()
}

t.test('a switch in one tab appears in the other two; the times are logged', async (t) => {
  const { device, tabs } = await threeTabs(t)
  for (const tab of tabs) await tab.getByTestId('tabs').filter({ hasText: /^3$/ }).waitFor()
  t.pass('every tab counts three open tabs')
  await showsPlatform(tabs[1]!, 'Pixelfed')
  await tabs[0]!.getByRole('button', { name: 'Use Mastodon' }).click()
  for (const tab of tabs) await showsPlatform(tab, 'Mastodon')
  for (const [i, tab] of tabs.entries()) {
    const metrics = await tab.evaluate<{ lastSwitch: { optimisticMs: number; confirmedMs: number } | null }>('window.sessionSync.getPerformanceMetrics()')
    t.comment(`tab ${i + 1}: optimistic after ${metrics.lastSwitch?.optimisticMs} ms, server-confirmed after ${metrics.lastSwitch?.confirmedMs} ms`)
  }
  t.same(await device.cspViolations(), [], 'no CSP violation')
  await tabs[2]!.close()
  for (const tab of tabs.slice(0, 2)) await tab.getByTestId('tabs').filter({ hasText: /^2$/ }).waitFor()
  t.pass('a closed tab leaves the count of the others')
})

t.test('a rapid double click makes one switch and one pending state', async (t) => {
  const { tabs } = await threeTabs(t)
  const switches: string[] = []
  tabs[0]!.on('request', (req) => {
    if (req.url().includes('/api/switch_platform/')) switches.push(req.url())
  })
  // Counts every time the pending badge appears, in every tab.
  for (const tab of tabs) {
    await tab.evaluate(`
      window.__pendingShown = 0
      new MutationObserver(() => {
        const shown = !!document.querySelector('[data-testid=switch-pending]')
        if (shown && !window.__wasPending) window.__pendingShown++
        window.__wasPending = shown
      }).observe(document.body, { subtree: true, childList: true, attributes: true })
    `)
  }
  await tabs[0]!.getByRole('button', { name: 'Use Archive' }).dblclick()
  for (const tab of tabs) await showsPlatform(tab, 'Archive')
  t.equal(switches.length, 1, 'one request')
  for (const [i, tab] of tabs.entries()) t.equal(await tab.evaluate('window.__pendingShown'), 1, `tab ${i + 1} showed the pending state once`)
})

t.test('a failing switch reverts in every tab with a visible error', async (t) => {
  const { app, tabs, platformIds } = await threeTabs(t)
  // The platform disappears behind the page's back: the switcher still offers it.
  await app.resources.database.sql`delete from platforms where id = ${platformIds[2]!}`
  await tabs[1]!.getByRole('button', { name: 'Use Archive' }).click()
  for (const tab of tabs) {
    await tab.getByText('The platform was not switched').first().waitFor()
    await showsPlatform(tab, 'Pixelfed')
  }
  t.pass('every tab reverted to Pixelfed and showed the error')
})

t.test('logout in one tab signs out all three', async (t) => {
  const { device, tabs } = await threeTabs(t)
  await tabs[2]!.getByRole('button', { name: 'Sign out', exact: true }).click()
  t.same(await accessibilityProblems(tabs[2]!), [], 'the sign-out dialog is accessible')
  await tabs[2]!.getByRole('button', { name: 'Sign out this device' }).click()
  for (const tab of tabs) {
    await tab.getByTestId('ending-notice').filter({ hasText: 'You are signed out' }).waitFor()
    await tab.locator('#username').waitFor()
  }
  t.same(await accessibilityProblems(tabs[0]!), [], 'the sign-in page with its notice is accessible')
  t.same(await device.cspViolations(), [], 'no CSP violation')
})

t.test('a newly opened tab shows the current platform at once, before the server answers', async (t) => {
  const { tabs, device } = await threeTabs(t)
  await tabs[0]!.getByRole('button', { name: 'Use Mastodon' }).click()
  for (const tab of tabs) await showsPlatform(tab, 'Mastodon')
  const page = await device.context.newPage()
  device.pages.push(page)
  let release!: () => void
  const held = new Promise<void>((resolve) => (release = resolve))
  let stateRequests = 0
  await page.route('**/api/session_state', async (route) => {
    stateRequests++
    await held
    await route.continue()
  })
  await page.goto(`${device.base}/`)
  await activePlatform(page).filter({ hasText: 'Mastodon' }).waitFor()
  t.ok(stateRequests >= 1, 'shown while the session_state request was still held')
  release()
  await page.getByTestId('connection').and(page.locator('[data-state=online]')).waitFor()
  await showsPlatform(page, 'Mastodon')
})

t.test('"sign out" of another device from "Your devices" ends that device\'s tabs', async (t) => {
  const { base, tabs } = await threeTabs(t)
  const laptop = await Device.open(t, browser, base)
  const other = await laptop.tab()
  await laptop.signIn(other, 'ada', PASSWORD)
  const otherTabs = [other, await laptop.tab()]
  for (const tab of otherTabs) await tab.getByTestId('connection').and(tab.locator('[data-state=online]')).waitFor()
  const devices = tabs[0]!.getByTestId('devices')
  await devices.locator('li').nth(1).waitFor()
  t.same(await accessibilityProblems(tabs[0]!), [], 'the signed-in page is accessible')
  await devices.getByRole('button', { name: /^Sign out/ }).click()
  for (const tab of otherTabs) await tab.getByTestId('ending-notice').filter({ hasText: 'Signed out from another device' }).waitFor()
  await devices.locator('li').nth(1).waitFor({ state: 'detached' })
  t.pass("the other device's tabs are on the sign-in page, and the list has one device left")
})

t.test('after a full scenario no token or CSRF token is in storage or on the channel', async (t) => {
  const { device, tabs } = await threeTabs(t)
  const token = await device.token()
  const csrf = await tabs[0]!.evaluate<string>("fetch('/api/auth/csrf').then((r) => r.json()).then((b) => b.csrfToken)")
  t.ok(token.length > 20 && csrf.length > 20)
  await tabs[0]!.getByRole('button', { name: 'Use Mastodon' }).click()
  for (const tab of tabs) await showsPlatform(tab, 'Mastodon')
  await tabs[1]!.getByRole('button', { name: 'Edit Results' }).click()
  await tabs[2]!.getByTestId('segment-results').getByText('You are editing').waitFor()
  await tabs[1]!.getByRole('button', { name: 'Done Results' }).click()
  await tabs[2]!.getByTestId('segment-results').getByText('Free').waitFor()
  await tabs[2]!.mouse.move(10, 10)
  await tabs[2]!.keyboard.press('Tab')
  const before = await device.leaks()
  t.match(before, /"channel":\["/, 'the tabs did talk over the channel')
  await tabs[0]!.getByRole('button', { name: 'Sign out', exact: true }).click()
  await tabs[0]!.getByRole('button', { name: 'Sign out this device' }).click()
  for (const tab of tabs) await tab.locator('#username').waitFor()
  const leaks = `${before}\n${await device.leaks()}`
  t.notOk(leaks.includes(token), 'the session token is nowhere')
  t.notOk(leaks.includes(csrf), 'the CSRF token is nowhere')
  t.same(await device.cspViolations(), [], 'no CSP violation')
})

t.test('every screen passes the accessibility scan in the dark scheme too', async (t) => {
  const { app, base } = await servedApp(t)
  await app.user('ada', { platforms: ['Pixelfed', 'Mastodon'] })
  const device = await Device.open(t, browser, base, { colorScheme: 'dark' })
  const page = await device.tab()
  await page.locator('#username').waitFor()
  t.same(await accessibilityProblems(page), [], 'sign-in')
  await page.locator('#username').fill('ada')
  await page.locator('#password').fill('wrong password')
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByTestId('sign-in-error').filter({ hasText: 'The username or password is wrong.' }).waitFor()
  t.same(await accessibilityProblems(page), [], 'sign-in with the server’s error')
  await device.signIn(page, 'ada', PASSWORD)
  await page.getByTestId('devices').locator('li').first().waitFor()
  t.same(await accessibilityProblems(page), [], 'the signed-in page')
  t.same(await device.cspViolations(), [], 'no CSP violation')
})
