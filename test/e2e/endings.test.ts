// How sessions end, as three tabs in real Chromium see it: an administrator's termination,
// the idle warning ("Still there?") answered in one tab, and idle expiry.
import t, { type Test } from 'tap'
import { ADMIN_PASSWORD, PASSWORD } from '../helpers/app.js'
import { accessibilityProblems, Device, launchChromium, servedApp } from '../helpers/browser.js'

const browser = await launchChromium(t)

async function threeTabs(t: Test, workers = false) {
  const { app, base } = await servedApp(t, {}, workers)
  await app.user('ada', { platforms: ['Pixelfed', 'Mastodon'] })
  const device = await Device.open(t, browser, base)
  const tabs = await device.signedInTabs('ada', PASSWORD, 3)
  return { app, device, tabs }
}

t.test('a termination through the admin API reaches every tab with its reason, and each lands on sign-in', async (t) => {
  const { app, device, tabs } = await threeTabs(t)
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  const sessionId = await tabs[0]!.getByTestId('session-id').textContent()
  const res = await admin.delete(`/admin/sessions/${sessionId}`, { reason: 'Security review' })
  t.equal(res.statusCode, 200)
  for (const tab of tabs) {
    await tab.getByTestId('ending-notice').filter({ hasText: 'Session terminated by administrator: Security review' }).waitFor()
    await tab.locator('#username').waitFor()
  }
  t.same(await accessibilityProblems(tabs[1]!), [], 'the sign-in page with the termination is accessible')
  t.same(await device.cspViolations(), [], 'no CSP violation')
})

t.test('"Still there?" appears in every tab; "stay" in one keeps the session in all; ignored, it ends in "Session expired"', async (t) => {
  const { app, device, tabs } = await threeTabs(t, true)
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  // Idle after 2 s, warned 4 s after the last input, expired after 10 s.
  const res = await admin.put('/admin/sessions/config', { idleAfterSeconds: 2, idleTimeoutSeconds: 10, idleWarningSeconds: 6 })
  t.equal(res.statusCode, 200, 'short idle settings')
  // Input now starts the clock from here (settings apply to the next deadline).
  await tabs[0]!.keyboard.press('Shift')
  await tabs[0]!.mouse.move(20, 20)
  await tabs[0]!.mouse.down()
  await tabs[0]!.mouse.up()
  for (const tab of tabs) await tab.getByTestId('still-there').waitFor({ timeout: 20_000 })
  t.pass('the warning is shown in all three tabs')
  t.match(await tabs[2]!.getByRole('timer').textContent(), /^\d:\d\d$/, 'with a countdown')
  t.same(await accessibilityProblems(tabs[2]!), [], 'the dialog is accessible')

  await tabs[1]!.getByRole('button', { name: 'Stay signed in' }).click()
  for (const tab of tabs) await tab.getByTestId('still-there').waitFor({ state: 'detached' })
  for (const tab of tabs) await tab.getByTestId('session-status').filter({ hasText: 'Active' }).waitFor()
  t.pass('"stay" in one tab closed the warning in all three, and the session is active')

  // Now nobody answers.
  for (const tab of tabs) await tab.getByTestId('still-there').waitFor({ timeout: 20_000 })
  for (const tab of tabs) await tab.getByTestId('ending-notice').filter({ hasText: 'Session expired' }).waitFor({ timeout: 20_000 })
  t.pass('ignored, the warning ends in "Session expired" in every tab')
  t.same(await device.cspViolations(), [], 'no CSP violation')
})
