// The dashboard's other pages in real Chromium: alerts live with acknowledge, the login
// history with its flags and filters, analytics drawn from a seeded history, settings
// refused with the server's words or in force; every page accessible, light and dark.
import t, { type Test } from 'tap'
import type { Page } from 'playwright-core'
import { ADMIN_PASSWORD, PASSWORD, type TestApp } from '../helpers/app.js'
import { accessibilityProblems, Device, launchChromium, servedApp } from '../helpers/browser.js'

const browser = await launchChromium(t)

async function dashboard(t: Test, base: string, colorScheme: 'light' | 'dark' = 'light'): Promise<{ device: Device; page: Page }> {
  const device = await Device.open(t, browser, base, { colorScheme })
  return { device, page: await device.dashboard() }
}

const login = (app: TestApp, username: string, password: string, ip = '198.51.100.7') =>
  app.app.inject({ method: 'POST', url: '/api/auth/login', payload: { username, password }, remoteAddress: ip, headers: { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0' } })

t.test('five failed logins raise one alert, live, acknowledged from the page; the history shows and filters them', async (t) => {
  const { app, base } = await servedApp(t, {}, true)
  await app.user('ada')
  const api = await app.client().signIn('admin', ADMIN_PASSWORD)
  // Without the lockout, the threshold raises one alert (and no lockout alert).
  const config = (await api.get('/admin/sessions/config')).json()
  t.equal((await api.put('/admin/sessions/config', { failedLogin: { ...config.failedLogin, threshold: 5, lockoutEnabled: false } })).statusCode, 200)
  t.equal((await login(app, 'ada', PASSWORD, '198.51.100.1')).statusCode, 200, 'a success first')
  t.equal((await login(app, 'ada', PASSWORD, '198.51.100.2')).statusCode, 200, 'then one from another address')
  const { device, page } = await dashboard(t, base)
  await page.getByRole('link', { name: 'Alerts' }).click()
  for (let i = 0; i < 5; i++) t.equal((await login(app, 'ada', `wrong-${i}-password`)).statusCode, 401)
  const alerts = page.getByTestId('alerts')
  const threshold = alerts.locator('[data-type=failed_login_threshold]')
  await threshold.waitFor()
  const shown = await alerts.locator('li').count()
  t.comment(`alerts shown: ${await alerts.locator('li').evaluateAll((l) => l.map((e) => (e as unknown as { getAttribute(n: string): string }).getAttribute('data-type')))}`)
  await page.getByTestId('alert-count').filter({ hasText: new RegExp(`^${shown}`) }).waitFor()
  t.equal(await threshold.count(), 1, 'one failed-login alert, shown live, counted in the header')
  t.same(await accessibilityProblems(page), [], 'the alerts page is accessible')
  await threshold.getByRole('button', { name: /^Acknowledge/ }).click()
  await threshold.waitFor({ state: 'detached' })
  if (shown === 1) await page.getByTestId('alert-count').waitFor({ state: 'detached' })
  else await page.getByTestId('alert-count').filter({ hasText: new RegExp(`^${shown - 1}`) }).waitFor()
  t.match((await api.get('/admin/alerts?acknowledged=true')).json().items, [{ type: 'failed_login_threshold', acknowledged: true }], 'acknowledged on the server')

  await page.getByRole('link', { name: 'Login history' }).click()
  const history = page.getByTestId('history-table')
  await history.locator('tbody tr').nth(6).waitFor()
  await history.locator('[data-flag=new_device]').first().waitFor()
  t.pass('the sign-in from a new address is flagged new_device')
  await page.getByLabel('User (name or id)').fill('ada')
  await page.getByLabel('Result').selectOption('false')
  await page.getByRole('button', { name: 'Show' }).click()
  await history.locator('tbody tr[data-success=true]').first().waitFor({ state: 'detached' })
  t.equal(await history.locator('tbody tr[data-success=false]').count(), 5, 'filtered: the five failures of ada')
  t.same(await accessibilityProblems(page), [], 'the history is accessible')
  t.same(await device.cspViolations(), [], 'no CSP violation')
})

t.test('the analytics page draws its figures from a seeded history, equal to the API', async (t) => {
  const { app, base } = await servedApp(t)
  const { id: userId } = await app.user('ada')
  const { sql } = app.resources.database
  // Twelve sessions over the last six days, ended for different reasons.
  const reasons = ['logout', 'idle_timeout', 'admin', 'logout']
  for (let i = 0; i < 12; i++) {
    const start = new Date(Date.now() - (i * 11 + 2) * 3_600_000)
    const end = new Date(start.getTime() + (i + 1) * 600_000)
    await sql`insert into sessions (id, user_id, token_hash, status, created_at, last_activity, expires_at, ended_at, end_reason, finalized_at)
      values (gen_random_uuid(), ${userId}, ${`${i}`.padStart(64, '0')}, 'ended', ${start}, ${end}, ${new Date(start.getTime() + 86_400_000)}, ${end}, ${reasons[i % reasons.length]!}, ${end})`
  }
  const { device, page } = await dashboard(t, base)
  const [response] = await Promise.all([page.waitForResponse((r) => r.url().includes('/admin/sessions/analytics')), page.getByRole('link', { name: 'Analytics' }).click()])
  const api = await response.json()
  await page.getByTestId('total-sessions').waitFor()
  const value = async (testId: string) => page.getByTestId(testId).getAttribute('data-value')
  t.equal(Number(await value('total-sessions')), api.totalSessions, 'sessions')
  t.ok(api.totalSessions >= 12, 'the seeded sessions are counted')
  t.equal(Number(await value('average-duration')), api.averageDurationSeconds, 'average duration')
  t.equal(Number(await value('median-duration')), api.medianDurationSeconds, 'median duration')
  t.equal(Number(await value('overall-peak')), api.overallPeak?.sessions ?? 0, 'peak')
  const numbers = (testId: string) => page.getByTestId(testId).locator('td[data-value]').evaluateAll((cells) => cells.map((c) => Number((c as unknown as { getAttribute(n: string): string }).getAttribute('data-value'))))
  t.same(await numbers('chart-peaks'), api.peakConcurrent.map((p: { peak: number }) => p.peak), 'peak per bucket')
  t.same(await numbers('chart-hours'), api.activeByHourOfDay, 'by hour of day')
  t.same((await numbers('chart-reasons')).sort(), (Object.values(api.endReasons) as number[]).sort(), 'end reasons')
  t.equal(await page.locator('canvas').count(), 3, 'three charts drawn')
  t.same(await accessibilityProblems(page), [], 'the analytics page is accessible')
  t.same(await device.cspViolations(), [], 'no CSP violation')
})

t.test("a settings change is refused with the server's words beside the field, or in force when valid", async (t) => {
  const { app, base } = await servedApp(t)
  await app.user('ada')
  t.equal((await login(app, 'ada', PASSWORD)).statusCode, 200, 'ada has one session')
  const { device, page } = await dashboard(t, base)
  await page.getByRole('link', { name: 'Settings' }).click()
  await page.getByLabel('Idle timeout (seconds)').fill('1')
  await page.getByRole('button', { name: 'Save settings' }).click()
  const error = page.locator('#idleTimeoutSeconds-error')
  await error.waitFor()
  t.match(await error.textContent(), /idleTimeoutSeconds/, 'the server’s message, beside the field')
  t.same(await accessibilityProblems(page), [], 'the settings page with an error is accessible')
  await page.getByRole('button', { name: 'Undo changes' }).click()
  await page.getByLabel('Sessions per user (default)').fill('1')
  await page.getByLabel(/Refuse the new sign-in/).check()
  await page.getByRole('button', { name: 'Save settings' }).click()
  await page.getByText('Saved: in force on every node within a second').waitFor()
  const second = await login(app, 'ada', PASSWORD, '198.51.100.99')
  t.equal(second.statusCode, 409, 'a second login past the limit of 1 is refused (block_new)')
  t.equal(second.json().error.code, 'SESSION_LIMIT_REACHED')
  t.same(await device.cspViolations(), [], 'no CSP violation')
})

t.test('every dashboard page passes the accessibility scan in the dark scheme', async (t) => {
  const { app, base } = await servedApp(t)
  await app.user('ada')
  t.equal((await login(app, 'ada', PASSWORD)).statusCode, 200)
  const { device, page } = await dashboard(t, base, 'dark')
  await page.getByTestId('sessions-table').locator('tbody tr[data-session-id]').nth(1).waitFor()
  t.same(await accessibilityProblems(page), [], 'sessions')
  for (const name of ['Login history', 'Alerts', 'Analytics', 'Settings']) {
    await page.getByRole('link', { name }).click()
    await page.getByRole('heading', { level: 1, name: name === 'Login history' ? 'Login history' : name }).waitFor()
    await page.waitForLoadState('networkidle')
    t.same(await accessibilityProblems(page), [], name)
  }
  t.same(await device.cspViolations(), [], 'no CSP violation')
})
