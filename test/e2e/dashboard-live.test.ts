// The admin dashboard in real Chromium, an admin in one browser context and a user's tabs
// in another: the live table follows logins, switches, views, idleness and logouts; force
// terminate asks for a reason and reaches the user's tabs; other roles see no dashboard.
import t, { type Test } from 'tap'
import type { Page } from 'playwright-core'
import { ADMIN_PASSWORD, PASSWORD } from '../helpers/app.js'
import { accessibilityProblems, Device, launchChromium, servedApp } from '../helpers/browser.js'

const browser = await launchChromium(t)

/** The dashboard, signed in as the first admin. */
async function dashboard(t: Test, base: string): Promise<{ device: Device; page: Page }> {
  const device = await Device.open(t, browser, base)
  return { device, page: await device.dashboard() }
}

async function userTab(t: Test, base: string, username: string) {
  const device = await Device.open(t, browser, base)
  const tab = await device.tab()
  await device.signIn(tab, username, PASSWORD)
  const id = (await tab.getByTestId('session-id').textContent())!
  return { device, tab, id }
}

const row = (page: Page, id: string) => page.getByTestId('sessions-table').locator(`tr[data-session-id="${id}"]`)
const cell = (page: Page, id: string, column: string) => row(page, id).locator(`td[data-column=${column}]`)

t.test("the live table follows a user's login, switch, view, idleness and logout without a reload", async (t) => {
  const { app, base } = await servedApp(t, {}, true)
  await app.user('ada', { platforms: ['Pixelfed', 'Mastodon'] })
  const { device: admin, page } = await dashboard(t, base)
  const requests: string[] = []
  page.on('request', (r) => requests.push(r.url()))

  const { tab, id, device: user } = await userTab(t, base, 'ada')
  await row(page, id).waitFor()
  t.pass('the login added a row')
  t.equal(await row(page, id).getAttribute('data-state'), 'new', 'marked new for a moment')
  await row(page, id).and(page.locator('[data-state=live]')).waitFor()

  await tab.getByRole('button', { name: 'Use Mastodon' }).click()
  await cell(page, id, 'platform').filter({ hasText: 'Mastodon' }).waitFor()
  await tab.evaluate("location.hash = '#/compose'")
  await cell(page, id, 'currentView').filter({ hasText: '/#/compose' }).waitFor()
  t.pass('the switch and the view change updated the row')

  const settings = await app.client().signIn('admin', ADMIN_PASSWORD)
  t.equal((await settings.put('/admin/sessions/config', { idleAfterSeconds: 2, idleTimeoutSeconds: 600, idleWarningSeconds: 0 })).statusCode, 200)
  await row(page, id).and(page.locator('[data-state=idle]')).waitFor({ timeout: 20_000 })
  await cell(page, id, 'status').filter({ hasText: 'Idle' }).waitFor()
  t.pass('idle: the row is grey with the badge')
  await tab.mouse.move(40, 40)
  await tab.mouse.move(80, 90)
  await row(page, id).and(page.locator('[data-state=live]')).waitFor()
  t.pass('the user moved: active again')

  await tab.getByRole('button', { name: 'Sign out', exact: true }).click()
  await tab.getByRole('button', { name: 'Sign out this device' }).click()
  await row(page, id).and(page.locator('[data-state=ended]')).waitFor()
  await row(page, id).waitFor({ state: 'detached' })
  t.pass('the logout marked the row ended, then removed it')
  t.notOk(
    requests.some((url) => /\/admin\/sessions(\?|$)/.test(new URL(url).pathname + new URL(url).search)),
    'the table never polled GET /admin/sessions (the feed had every row)',
  )
  t.same([...(await admin.cspViolations()), ...(await user.cspViolations())], [], 'no CSP violation')
})

t.test('force terminate asks for a reason, refuses an empty one, and the user is told', async (t) => {
  const { app, base } = await servedApp(t)
  await app.user('ada', { platforms: ['Pixelfed'] })
  const { device: admin, page } = await dashboard(t, base)
  const { tab, id } = await userTab(t, base, 'ada')
  await row(page, id).getByRole('button', { name: /^Terminate/ }).click()
  const dialog = page.getByTestId('terminate-dialog')
  await dialog.waitFor()
  t.same(await accessibilityProblems(page), [], 'the dialog is accessible')
  await dialog.getByRole('button', { name: 'Terminate', exact: true }).click()
  await dialog.getByRole('alert').filter({ hasText: 'Give a reason' }).waitFor()
  t.pass('an empty reason is refused')
  await dialog.getByLabel('Reason (required)').fill('Shared account, reported by the owner')
  await dialog.getByRole('button', { name: 'Terminate', exact: true }).click()
  await tab.getByTestId('ending-notice').filter({ hasText: 'Session terminated by administrator: Shared account, reported by the owner' }).waitFor()
  await row(page, id).waitFor({ state: 'detached' })
  t.pass("the user's tab shows the termination with the reason, and the row left")

  const api = await app.client().signIn('admin', ADMIN_PASSWORD)
  const audit = (await api.get(`/admin/audit?session=${id}&type=session.ended`)).json().items
  const adminId = (await api.get('/admin/users?q=admin')).json().items.find((u: { username: string }) => u.username === 'admin').id
  t.match(audit, [{ type: 'session.ended', actorUserId: adminId, data: { reason: 'admin', note: 'Shared account, reported by the owner' } }], 'audited with the admin as actor')
  await page.goto(`${base}/admin#/sessions/${id}`)
  const timeline = page.getByTestId('timeline')
  await timeline.locator('li[data-type="session.ended"]').filter({ hasText: 'by admin' }).waitFor()
  t.pass("the session's timeline shows the termination by the admin")
  t.same(await accessibilityProblems(page), [], 'the session detail is accessible')
  t.same(await admin.cspViolations(), [], 'no CSP violation')
})

t.test('a note for the user is shown instead of the reason, which the audit keeps', async (t) => {
  const { app, base } = await servedApp(t)
  await app.user('ada', { platforms: ['Pixelfed'] })
  const { page } = await dashboard(t, base)
  const { tab, id } = await userTab(t, base, 'ada')
  await row(page, id).locator('input[type=checkbox]').check()
  await page.getByRole('button', { name: 'Terminate selected (1)' }).click()
  const dialog = page.getByTestId('terminate-dialog')
  await dialog.getByLabel('Reason (required)').fill('Account under investigation (ticket 4711)')
  await dialog.getByLabel(/^Note to the user/).fill('Please call the help desk')
  await dialog.getByRole('button', { name: 'Terminate', exact: true }).click()
  await tab.getByTestId('ending-notice').filter({ hasText: 'Session terminated by administrator: Please call the help desk' }).waitFor()
  const api = await app.client().signIn('admin', ADMIN_PASSWORD)
  const [event] = (await api.get(`/admin/audit?session=${id}&type=session.ended`)).json().items
  t.match(event.data, { reason: 'admin', note: 'Please call the help desk', adminReason: 'Account under investigation (ticket 4711)' })
})

t.test('a visitor gets the sign-in page and another role "administrators only", never the data', async (t) => {
  const { app, base } = await servedApp(t)
  await app.user('linus', { role: 'reviewer' })
  const device = await Device.open(t, browser, base)
  const page = await device.tab('/admin')
  await page.getByRole('heading', { name: 'Sign in to the admin dashboard' }).waitFor()
  t.same(await accessibilityProblems(page), [], 'the sign-in page is accessible')
  const adminCalls: number[] = []
  page.on('response', (r) => {
    if (new URL(r.url()).pathname.startsWith('/admin/')) adminCalls.push(r.status())
  })
  await page.locator('#username').fill('linus')
  await page.locator('#password').fill(PASSWORD)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByRole('heading', { name: 'Administrators only' }).waitFor()
  t.same(adminCalls, [], 'the page asked the admin API for nothing')
  t.equal(await page.getByTestId('sessions-table').count(), 0)
  t.same(await accessibilityProblems(page), [], 'the page is accessible')
  t.same(await device.cspViolations(), [], 'no CSP violation')
})
