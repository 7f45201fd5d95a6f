// The demo app's PDF upload in real Chromium: the progress bar counts up, the file is
// listed, and the server's refusals are shown in its words.
import t from 'tap'
import { PASSWORD } from '../helpers/app.js'
import { accessibilityProblems, Device, launchChromium, servedApp } from '../helpers/browser.js'
import { samplePdf } from '../helpers/multipart.js'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const browser = await launchChromium(t)

t.test('a PDF uploads with a progress bar and is listed; a non-PDF and a large file are refused in the server’s words', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-e2e-uploads-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const { app, base } = await servedApp(t, { UPLOAD_DIR: dir })
  await app.user('ada', { platforms: ['Pixelfed'] })
  const device = await Device.open(t, browser, base)
  const [page] = await device.signedInTabs('ada', PASSWORD, 1)
  // A slow uplink, so the progress is there to be seen.
  const cdp = await device.context.newCDPSession(page!)
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 20, downloadThroughput: -1, uploadThroughput: 1_000_000 })
  await page!.evaluate(`
    window.__progress = []
    new MutationObserver(() => {
      const bar = document.querySelector('[data-testid=upload-progress] progress')
      if (bar) window.__progress.push(Number(bar.getAttribute('value')))
    }).observe(document.body, { subtree: true, childList: true, attributes: true })
  `)
  const pdf = Buffer.concat([samplePdf(), Buffer.alloc(3 * 1024 * 1024, ' ')])
  await page!.locator('#upload-input').setInputFiles({ name: 'quarterly report.pdf', mimeType: 'application/pdf', buffer: pdf })
  await page!.getByTestId('uploads').getByRole('link', { name: 'quarterly report.pdf' }).waitFor({ timeout: 60_000 })
  const seen = await page!.evaluate<number[]>('window.__progress')
  t.comment(`progress seen: ${[...new Set(seen)].join(', ')} %`)
  t.ok(
    seen.some((v) => v > 0 && v < 100),
    'the bar showed the upload part way',
  )
  t.same(await accessibilityProblems(page!), [], 'the page with its files is accessible')
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 })

  await page!.locator('#upload-input').setInputFiles({ name: 'photo.pdf', mimeType: 'application/pdf', buffer: Buffer.from('\u00ff\u00d8\u00ff\u00e0 not a pdf') })
  await page!.getByText('PDF files only').first().waitFor()
  t.pass('a file named .pdf that is not one: "PDF files only"')
  await page!.locator('#upload-input').setInputFiles({ name: 'scan.pdf', mimeType: 'application/pdf', buffer: Buffer.concat([samplePdf(), Buffer.alloc(6 * 1024 * 1024, ' ')]) })
  await page!.getByText('larger than 5 MB').first().waitFor({ timeout: 60_000 })
  t.pass('a 6 MB file: "larger than 5 MB"')
  t.equal(await page!.getByTestId('uploads').locator('li').count(), 1, 'only the good file is listed')
  t.same(await device.cspViolations(), [], 'no CSP violation')
})
