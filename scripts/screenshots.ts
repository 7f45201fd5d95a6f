// `npm run screenshots [-- <url> <username> <password>]`: pictures for the docs, taken from
// a running server (npm start, with its demo accounts) in Debian's Chromium: two tabs of one
// browser side by side after a switch in the first, in light and dark; then the admin
// dashboard (as the demo admin ada) with a few demo users signed in: sessions and analytics.
import { mkdirSync, readFileSync } from 'node:fs'
import { chromium, type Page } from 'playwright-core'

const [base = 'http://localhost:3000', username = 'linus', password = `demo-${username}-pass`] = process.argv.slice(2)
const OUT = 'docs/images'
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync']

async function ready(page: Page) {
  await page.getByTestId('connection').and(page.locator('[data-state=online]')).waitFor()
  await page.getByTestId('devices').locator('li').first().waitFor()
}

/** The dashboard's sessions table and analytics page, with some demo users signed in. */
async function dashboard(browser: import('playwright-core').Browser) {
  process.stdout.write('dashboard: ')
  for (const user of ['margaret', 'ken', 'alan', 'barbara', 'dennis', 'edsger']) {
    const context = await browser.newContext()
    const page = await context.newPage()
    await page.goto(`${base}/`)
    await page.locator('#username').fill(user)
    await page.locator('#password').fill(`demo-${user}-pass`)
    await page.getByRole('button', { name: 'Sign in' }).click()
    await ready(page)
    if (user === 'ken' || user === 'dennis') await page.evaluate("location.hash = '#/compose'")
  }
  const context = await browser.newContext({ viewport: { width: 1440, height: 760 }, colorScheme: 'light' })
  const page = await context.newPage()
  await page.goto(`${base}/admin`)
  await page.locator('#username').fill('ada')
  await page.locator('#password').fill('demo-ada-pass')
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByTestId('sessions-table').locator('tbody tr[data-session-id]').nth(5).waitFor()
  await page.waitForTimeout(4500) // the "new" marks fade
  await page.screenshot({ path: `${OUT}/dashboard-sessions.png` })
  await page.getByRole('link', { name: 'Analytics' }).click()
  await page.locator('canvas').nth(2).waitFor()
  await page.waitForTimeout(500)
  await page.setViewportSize({ width: 1440, height: 1000 })
  await page.screenshot({ path: `${OUT}/dashboard-analytics.png` })
  process.stdout.write(`${OUT}/dashboard-sessions.png, ${OUT}/dashboard-analytics.png\n`)
  await context.close()
}

async function main() {
  mkdirSync(OUT, { recursive: true })
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: ARGS })
  try {
    for (const scheme of ['light', 'dark'] as const) {
      process.stdout.write(`${scheme}: `)
      const context = await browser.newContext({ viewport: { width: 1000, height: 820 }, colorScheme: scheme, deviceScaleFactor: 1 })
      const a = await context.newPage()
      await a.goto(`${base}/`)
      await a.locator('#username').fill(username)
      await a.locator('#password').fill(password)
      await a.getByRole('button', { name: 'Sign in' }).click()
      await ready(a)
      const b = await context.newPage()
      await b.goto(`${base}/`)
      await ready(b)
      await a.getByTestId('tabs').filter({ hasText: /^2$/ }).waitFor()
      const next = a.getByRole('button', { name: /^Use / }).first()
      const name = ((await next.textContent()) ?? '').replace(/^Use /, '')
      await next.click()
      for (const page of [a, b]) await page.getByTestId('active-platform').and(page.locator('[data-pending=false]')).filter({ hasText: name }).waitFor()
      const shots = await Promise.all([a, b].map((page) => page.screenshot().then((png) => png.toString('base64'))))
      process.stdout.write(`switched to ${name} in tab 1, both tabs show it… `)
      // Side by side, captioned, as one picture.
      const board = await context.newPage()
      await board.setViewportSize({ width: 2 * 1000 + 72, height: 820 + 96 })
      await board.setContent(`<body style="margin:0;padding:24px;background:${scheme === 'dark' ? '#05070a' : '#dfe3ea'};font:600 16px system-ui;color:${scheme === 'dark' ? '#e6e9ef' : '#1a1e24'}">
        <div style="display:flex;gap:24px">${shots
          .map((png, i) => `<figure style="margin:0"><figcaption style="margin:0 0 12px">Tab ${i + 1}${i === 0 ? `: clicked “Use ${name}”` : ': followed at once'}</figcaption><img style="display:block;border-radius:10px;box-shadow:0 4px 18px rgb(0 0 0 / .25)" src="data:image/png;base64,${png}"></figure>`)
          .join('')}</div></body>`)
      await board.screenshot({ path: `${OUT}/two-tabs-${scheme}.png` })
      process.stdout.write(`${OUT}/two-tabs-${scheme}.png (${(readFileSync(`${OUT}/two-tabs-${scheme}.png`).length / 1024).toFixed(0)} KiB)\n`)
      await a.getByRole('button', { name: 'Sign out', exact: true }).click()
      await a.getByRole('button', { name: 'Sign out this device' }).click()
      await context.close()
    }
    await dashboard(browser)
  } finally {
    await browser.close()
  }
}

main().catch((err) => {
  process.stderr.write(`screenshots: ${err instanceof Error ? err.message : err}\n`)
  process.exit(1)
})
