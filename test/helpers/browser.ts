// Real Chromium (Debian's package, driven by playwright-core) against a real server for
// the browser tests: one browser per test file, one context per simulated device.
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core'
import { pagesDir } from '../../src/web/routes.js'
import { ADMIN_PASSWORD, build, type TestApp } from './app.js'
import { listen } from './ws.js'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
// No sandbox as root; the rest keeps Chromium off this closed network.
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic']
const RESULTS = join(process.cwd(), 'test-results')

interface Tap {
  teardown(fn: () => unknown): void
  passing(): boolean
  name: string
  comment(...args: unknown[]): void
}

/** One Chromium for the file's tests. */
export async function launchChromium(t: Pick<Tap, 'teardown'>): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium is not installed at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM_PATH)`)
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS })
  t.teardown(() => browser.close())
  return browser
}

/** A real app on a real port, serving the built demo app. */
export async function servedApp(t: Tap, env: Record<string, string> = {}, workers = false): Promise<{ app: TestApp; base: string }> {
  if (!existsSync(join(pagesDir(), 'demo', 'index.html'))) throw new Error('the browser pages are not built: npm run build:client (npm test does it first)')
  const app = await build(t, { UUID_RATE_LIMIT: '1000/min', LOGIN_RATE_LIMIT: '1000/min', ...env }, { workers })
  return { app, base: `http://${await listen(app)}` }
}

// Runs in every page before its own scripts: records CSP violations and every message any
// script posts on a BroadcastChannel, for the tests to read.
const RECORDER = `
  window.__csp = [];
  document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
  window.__channel = [];
  const post = BroadcastChannel.prototype.postMessage;
  BroadcastChannel.prototype.postMessage = function (message) {
    window.__channel.push(JSON.stringify(message));
    return post.call(this, message);
  };
`

/** One browser profile (a device): its tabs share cookies, storage, channels and locks. */
export class Device {
  readonly pages: Page[] = []
  readonly consoleCsp: string[] = []

  private constructor(
    readonly context: BrowserContext,
    readonly base: string,
  ) {}

  static async open(t: Tap, browser: Browser, base: string, options: { colorScheme?: 'light' | 'dark' } = {}): Promise<Device> {
    const context = await browser.newContext({ viewport: { width: 1200, height: 900 }, colorScheme: options.colorScheme ?? 'light', locale: 'en-GB' })
    await context.addInitScript(RECORDER)
    const device = new Device(context, base)
    t.teardown(async () => {
      if (!t.passing()) await device.screenshots(t.name)
      await context.close()
    })
    return device
  }

  async tab(path = '/'): Promise<Page> {
    const page = await this.context.newPage()
    page.on('console', (message) => {
      if (message.text().includes('Content Security Policy')) this.consoleCsp.push(message.text())
    })
    this.pages.push(page)
    await page.goto(this.base + path)
    return page
  }

  async signIn(page: Page, username: string, password: string): Promise<void> {
    await page.locator('#username').fill(username)
    await page.locator('#password').fill(password)
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.getByTestId('active-platform').waitFor()
  }

  /** `count` tabs signed in as `username` (the first signs in, the others follow), each socket live. */
  async signedInTabs(username: string, password: string, count: number): Promise<Page[]> {
    const first = await this.tab()
    await this.signIn(first, username, password)
    const tabs = [first]
    while (tabs.length < count) tabs.push(await this.tab())
    for (const tab of tabs) await tab.getByTestId('connection').and(tab.locator('[data-state=online]')).waitFor()
    return tabs
  }

  /** The admin dashboard in a new tab, signed in as the first admin, its live feed up. */
  async dashboard(): Promise<Page> {
    const page = await this.tab('/admin')
    await page.locator('#username').fill('admin')
    await page.locator('#password').fill(ADMIN_PASSWORD)
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.getByTestId('feed').and(page.locator('[data-state=live]')).waitFor()
    return page
  }

  /** The session cookie's token, as a thief would want it. */
  async token(): Promise<string> {
    const cookie = (await this.context.cookies()).find((c) => c.name === 'sid')
    if (!cookie) throw new Error('no sid cookie')
    return cookie.value
  }

  /** Everything the pages wrote to storage or posted to other tabs. */
  async leaks(): Promise<string> {
    const parts: string[] = []
    for (const page of this.pages.filter((p) => !p.isClosed())) {
      parts.push(await page.evaluate<string>('JSON.stringify({ local: { ...localStorage }, session: { ...sessionStorage }, channel: window.__channel })'))
    }
    return parts.join('\n')
  }

  /** CSP violations seen by any page (events and console reports). */
  async cspViolations(): Promise<string[]> {
    const seen = [...this.consoleCsp]
    for (const page of this.pages.filter((p) => !p.isClosed())) seen.push(...(await page.evaluate<string[]>('window.__csp')))
    return seen
  }

  async screenshots(name: string): Promise<void> {
    mkdirSync(RESULTS, { recursive: true })
    const slug = name.replace(/[^a-z0-9]+/gi, '-').slice(0, 80)
    for (const [i, page] of this.pages.entries()) {
      if (!page.isClosed()) await page.screenshot({ path: join(RESULTS, `${slug}-tab${i + 1}.png`), fullPage: true }).catch(() => {})
    }
  }
}

/** axe-core's serious and critical violations on the page as it is now. */
export async function accessibilityProblems(page: Page): Promise<string[]> {
  const source = await import('axe-core').then((m) => (m.default ?? m).source)
  // Evaluated through the DevTools protocol: the page's CSP does not apply to it.
  await page.evaluate(source)
  const violations = await page.evaluate<{ id: string; impact: string; help: string; targets: string[] }[]>(`
    axe.run(document, { resultTypes: ['violations'] }).then((result) =>
      result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) })))
  `)
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.impact} ${v.id}: ${v.help} (${v.targets.join(', ')})`)
}
