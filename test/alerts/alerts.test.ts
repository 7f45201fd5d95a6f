// Alerts (issue 5): raised once per type, user and window; pushed at once to admin tabs on
// every node; delivered by the alert-delivery job to a signed webhook (retried) and by mail.
import { createHmac } from 'node:crypto'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { SMTPServer } from 'smtp-server'
import t from 'tap'
import type { AlertInput } from '../../src/alerts/service.js'
import { ADMIN_PASSWORD, build, PASSWORD, type TestApp } from '../helpers/app.js'
import { listen, type Message, openTab } from '../helpers/ws.js'
import { until } from '../helpers/wait.js'

const UA = 'Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0 Safari/537.36'
const TEST_SESSION_SECRET = 'test-secret-that-is-at-least-32-characters-long' // as test/helpers/app.ts sets it

interface Teardown {
  teardown(fn: () => unknown): void
}

interface Delivery {
  id: string
  headers: IncomingHttpHeaders
  body: string
  status: number
}

/** A webhook receiver on 127.0.0.1:0; `answer` picks the status from the delivery id's attempt number (1, 2, …). */
async function receiver(t: Teardown, answer: (attempt: number) => number) {
  const deliveries: Delivery[] = []
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (chunk: Buffer) => (body += chunk))
    req.on('end', () => {
      const id = String(req.headers['x-tessera-delivery'])
      const status = answer(deliveries.filter((d) => d.id === id).length + 1)
      deliveries.push({ id, headers: req.headers, body, status })
      res.writeHead(status).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}/hooks/tessera`, deliveries }
}

/** An SMTP server on 127.0.0.1:0 that keeps every message it is given. */
async function mailServer(t: Teardown) {
  const mails: { to: string[]; raw: string }[] = []
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      let raw = ''
      stream.on('data', (chunk: Buffer) => (raw += chunk))
      stream.on('end', () => {
        mails.push({ to: session.envelope.rcptTo.map((r) => r.address), raw })
        callback()
      })
    },
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const { port } = server.server.address() as AddressInfo
  return { url: `smtp://127.0.0.1:${port}`, mails }
}

const hexChar = (_: string, hex: string) => String.fromCharCode(Number.parseInt(hex, 16))

/** Enough MIME undone to read a plain-text mail: folded headers, RFC 2047 words, quoted-printable. */
function readMail(raw: string): string {
  return raw
    .replace(/\r\n[ \t]+/g, ' ')
    .replace(/=\?UTF-8\?Q\?(.*?)\?=[ \t]*/gi, (_, word: string) => word.replace(/_/g, ' ').replace(/=([0-9A-F]{2})/gi, hexChar))
    .replace(/=\r?\n/g, '')
    .replace(/=([0-9A-F]{2})/g, hexChar)
}

const hmac = (key: string, body: string) => `sha256=${createHmac('sha256', key).update(body).digest('hex')}`

async function alertCounts(app: TestApp): Promise<Record<string, number>> {
  const rows = await app.ctx.database.sql`select type, count(*)::int as n from alerts group by type`
  return Object.fromEntries(rows.map((r) => [r.type as string, r.n as number]))
}

const jobState = (app: TestApp, alertId: number) => app.ctx.queues.all.alertDelivery.getJobState(`alert-${alertId}`)

function loginFrom(app: TestApp, username: string, ip: string, password = PASSWORD) {
  return app.app.inject({ method: 'POST', url: '/api/auth/login', payload: { username, password }, remoteAddress: ip, headers: { 'user-agent': UA } })
}

t.test('N failed sign-ins raise one threshold alert and one lockout alert, pushed at once to admin tabs on every node', async (t) => {
  const app = await build(t, { FAILED_LOGIN_THRESHOLD: '3' })
  const ada = await app.user('ada')
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  const other = await app.node()
  const tabs = []
  for (const [address, tabId] of [
    [await listen(app), 'on-node-1'],
    [await listen(other), 'on-node-2'],
  ] as const) {
    const { tab } = await openTab(address, admin.sid!, { tabId, view: '/admin' })
    tab.send({ type: 'admin.subscribe' })
    await tab.type('admin.snapshot')
    tabs.push(tab)
  }

  const codes: number[] = []
  for (let i = 0; i < 6; i++) codes.push((await app.client().login('ada', 'wrong-password')).statusCode)
  t.same(codes, [401, 401, 423, 423, 423, 423], 'the third failure locks the account')
  t.same(await alertCounts(app), { failed_login_threshold: 1, account_locked: 1 }, 'exactly one of each, whatever follows in the window')

  const isAlert = (type: string) => (m: Message) => m.type === 'admin.alert' && (m.alert as { type: string }).type === type
  for (const tab of tabs) {
    t.match((await tab.next(isAlert('failed_login_threshold'))).alert, {
      id: Number,
      type: 'failed_login_threshold',
      userId: ada.id,
      username: 'ada',
      message: '3 failed sign-ins for "ada" within 15 min from 127.0.0.1',
      data: { failures: 3, windowSeconds: 900, ip: '127.0.0.1' },
      createdAt: String,
      acknowledged: false,
      acknowledgedAt: null,
      acknowledgedBy: null,
    })
    t.match((await tab.next(isAlert('account_locked'))).alert, { type: 'account_locked', userId: ada.id, data: { failures: 3, until: String } })
  }
  for (const tab of tabs) t.equal(tab.messages.filter((m) => m.type === 'admin.alert').length, 2, 'each tab got each alert once')

  // A locked user's next failures are refused before they are counted: nothing new.
  const locked = await app.client().login('ada', PASSWORD)
  t.equal(locked.statusCode, 423)
  t.same(await alertCounts(app), { failed_login_threshold: 1, account_locked: 1 })
})

t.test('without lockout, failures past the threshold raise nothing more; unknown names alert by name', async (t) => {
  const app = await build(t, { FAILED_LOGIN_THRESHOLD: '3', FAILED_LOGIN_LOCKOUT_SECONDS: '0' })
  await app.user('ada')
  for (let i = 0; i < 7; i++) t.equal((await app.client().login('ada', 'wrong-password')).statusCode, 401)
  t.same(await alertCounts(app), { failed_login_threshold: 1 }, 'no lockout alert when lockout is off')

  for (const name of ['ghost', 'ghost', 'Ghost', 'GHOST']) await app.client().login(name, 'whatever')
  const [ghost] = await app.ctx.database.sql`select user_id, username, data from alerts where username ilike 'ghost'`
  t.match(ghost, { user_id: null, username: 'Ghost', data: { failures: 3 } }, 'counted case-insensitively, like the lockout')
  t.same(await alertCounts(app), { failed_login_threshold: 2 })
})

t.test('new_device, multiple_ips and a fingerprint mismatch each raise their alert, once per user and window', async (t) => {
  const app = await build(t, { ANOMALY_DISTINCT_IPS: '2' })
  const ada = await app.user('ada')
  await app.user('bob')

  t.equal((await loginFrom(app, 'ada', '10.0.0.1')).statusCode, 200)
  t.same(await alertCounts(app), {}, 'a first sign-in is nothing unusual')
  t.equal((await loginFrom(app, 'ada', '10.0.0.2')).statusCode, 200)
  t.same(await alertCounts(app), { new_device: 1, multiple_ips: 1 }, 'one alert per flag')
  t.equal((await loginFrom(app, 'ada', '10.0.0.3')).statusCode, 200)
  t.same(await alertCounts(app), { new_device: 1, multiple_ips: 1 }, 'the same flags again in the window: deduplicated')
  t.equal((await loginFrom(app, 'bob', '10.0.0.1')).statusCode, 200)
  t.equal((await loginFrom(app, 'bob', '10.0.0.4')).statusCode, 200)
  t.same(await alertCounts(app), { new_device: 2, multiple_ips: 2 }, 'another user has alerts of their own')

  const [multiple] = (await app.ctx.alerts.list({ type: 'multiple_ips', limit: 10 })).items.filter((a) => a.userId === ada.id)
  t.match(multiple, {
    username: 'ada',
    message: '"ada" signed in from 2 or more IP addresses within 24 h (latest from 10.0.0.2)',
    data: { sessionId: String, ip: '10.0.0.2', distinctIps: 2, windowHours: 24, device: { browser: 'Chrome' } },
  })

  for (let i = 0; i < 2; i++) {
    const owner = await app.client().signIn('ada')
    const thief = app.client({ 'user-agent': 'curl/8.0' })
    thief.sid = owner.sid
    t.match((await thief.get('/api/session_state')).json(), { error: { code: 'SESSION_TERMINATED', reason: 'compromised' } })
  }
  const [mismatch] = (await app.ctx.alerts.list({ type: 'fingerprint_mismatch', limit: 10 })).items
  t.match(mismatch, { userId: ada.id, username: 'ada', data: { sessionId: String, userAgent: 'curl/8.0' } })
  t.equal((await alertCounts(app)).fingerprint_mismatch, 1, 'two mismatches within the hour: one alert')

})

// Guards a fixed bug: windows were fixed buckets counted from the epoch, so two raises a
// moment apart either side of a bucket's end made two alerts.
t.test('an alert window opens with the first alert: raises either side of a clock boundary are one alert', async (t) => {
  const app = await build(t)
  const bob = await app.user('bob')
  await app.ctx.settings.update({ failedLogin: { windowSeconds: 3 } }, 1)
  const input: AlertInput = { type: 'failed_login_threshold', userId: bob.id, username: 'bob', data: { failures: 5, windowSeconds: 3, ip: null } }
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
  // Just before a 3-second boundary of the epoch, where an old-style bucket would end.
  await sleep(3000 - (Date.now() % 3000) + 2700)
  t.ok(await app.ctx.alerts.create(input), 'the first raise is an alert')
  await sleep(600)
  t.equal(await app.ctx.alerts.create(input), null, 'a raise 0.6 s later, past the boundary, is the same window')
  t.ok(await app.ctx.alerts.create({ ...input, userId: null, username: 'bob-typo' }), 'another subject has its own window')
  await sleep(2600)
  t.ok(await app.ctx.alerts.create(input), 'once the window has run out, a raise is a new alert')
  t.equal((await alertCounts(app)).failed_login_threshold, 3)
})

t.test('each alert is POSTed once to the webhook, signed, and retried when the receiver first answers 500', async (t) => {
  const hook = await receiver(t, (attempt) => (attempt === 1 ? 500 : 204))
  const secret = 'whsec-test-0123456789abcdef'
  const app = await build(t, { FAILED_LOGIN_THRESHOLD: '3', ALERT_WEBHOOK_URL: hook.url, ALERT_WEBHOOK_SECRET: secret }, { workers: true })
  await app.user('ada')
  for (let i = 0; i < 3; i++) await app.client().login('ada', 'wrong-password')
  const { items } = await app.ctx.alerts.list({ limit: 10 })
  t.same(items.map((a) => a.type).sort(), ['account_locked', 'failed_login_threshold'])

  for (const alert of items) {
    await until(`delivery of alert ${alert.id}`, async () => (await jobState(app, alert.id)) === 'completed')
    const id = `alert-${alert.id}`
    const mine = hook.deliveries.filter((d) => d.id === id)
    t.same(
      mine.map((d) => d.status),
      [500, 204],
      `${id}: retried after the 500`,
    )
    t.equal(mine.filter((d) => d.status >= 200 && d.status < 300).length, 1, `${id}: delivered successfully exactly once`)
    for (const d of mine) {
      t.match(d.headers, { 'content-type': 'application/json', 'x-tessera-event': 'alert', 'x-tessera-delivery': id })
      t.equal(d.headers['x-tessera-signature'], hmac(secret, d.body), 'signed with ALERT_WEBHOOK_SECRET over the raw body')
      t.same(JSON.parse(d.body), alert, 'the body is the alert')
    }
  }

  // Enqueueing an alert again adds nothing: the job id is the delivery id (R4).
  const [first] = items
  await app.ctx.queues.enqueueAlert(`alert-${first!.id}`, { alert: first, sent: {} })
  t.match(await app.ctx.queues.all.alertDelivery.getJobCounts('completed', 'waiting', 'delayed', 'active'), { completed: 2, waiting: 0, delayed: 0, active: 0 })
})

t.test('N failed sign-ins with lockout disabled: exactly one alert, delivered signed, retried after a 500', async (t) => {
  const hook = await receiver(t, (attempt) => (attempt === 1 ? 500 : 204))
  const secret = 'whsec-test-0123456789abcdef'
  const app = await build(t, { ALERT_WEBHOOK_URL: hook.url, ALERT_WEBHOOK_SECRET: secret }, { workers: true })
  await app.user('ada')
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  t.equal((await admin.put('/admin/sessions/config', { failedLogin: { threshold: 3, lockoutEnabled: false } })).statusCode, 200)
  const codes: number[] = []
  for (let i = 0; i < 8; i++) codes.push((await app.client().login('ada', 'wrong-password')).statusCode)
  t.same(codes, Array(8).fill(401), 'never locked')
  const { items } = await app.ctx.alerts.list({ limit: 10 })
  t.equal(items.length, 1, 'one alert for eight failures')
  const [alert] = items
  t.match(alert, { type: 'failed_login_threshold', username: 'ada', data: { failures: 3 } })
  await until('delivery', async () => (await jobState(app, alert!.id)) === 'completed')
  t.same(
    hook.deliveries.map((d) => [d.id, d.status]),
    [
      [`alert-${alert!.id}`, 500],
      [`alert-${alert!.id}`, 204],
    ],
    'the only deliveries: one refused, one retry taken',
  )
  for (const d of hook.deliveries) {
    t.equal(d.headers['x-tessera-signature'], hmac(secret, d.body), 'a valid signature')
    t.same(JSON.parse(d.body), alert)
  }
})

t.test('with SMTP_URL and ALERT_EMAIL_TO an alert is mailed too, once, even when the webhook is retried', async (t) => {
  const smtp = await mailServer(t)
  const hook = await receiver(t, (attempt) => (attempt === 1 ? 503 : 200))
  const app = await build(
    t,
    { FAILED_LOGIN_THRESHOLD: '3', FAILED_LOGIN_LOCKOUT_SECONDS: '0', ALERT_WEBHOOK_URL: hook.url, SMTP_URL: smtp.url, ALERT_EMAIL_TO: 'ops@example.com' },
    { workers: true },
  )
  await app.user('ada')
  for (let i = 0; i < 3; i++) await app.client().login('ada', 'wrong-password')
  const [alert] = (await app.ctx.alerts.list({ limit: 10 })).items
  await until('delivery', async () => (await jobState(app, alert!.id)) === 'completed')

  t.equal(smtp.mails.length, 1, 'the retry (for the webhook) did not mail again')
  const mail = smtp.mails[0]!
  t.same(mail.to, ['ops@example.com'])
  const text = readMail(mail.raw)
  t.match(text, /^To: ops@example\.com/m)
  t.match(text, `Subject: [Tessera] ${alert!.message}\r\n`)
  t.match(text, /^Content-Type: text\/plain/m)
  t.match(text, alert!.message)
  t.match(text, `Type:      failed_login_threshold`)
  t.match(text, `delivery alert-${alert!.id}`)

  t.same(
    hook.deliveries.map((d) => d.status),
    [503, 200],
  )
  // Without ALERT_WEBHOOK_SECRET the key is derived from SESSION_SECRET.
  const key = createHmac('sha256', TEST_SESSION_SECRET).update('alert-webhook').digest('hex')
  for (const d of hook.deliveries) t.equal(d.headers['x-tessera-signature'], hmac(key, d.body))
})

t.test('GET /admin/alerts filters and pages newest first; ack is idempotent and audited; admins only', async (t) => {
  const app = await build(t)
  const users = await Promise.all(['ada', 'bob', 'cyd'].map((name) => app.user(name)))
  const device = { browser: 'Chrome', os: 'Linux', type: 'desktop' }
  const raised = []
  for (const [i, u] of users.entries()) {
    raised.push(await app.ctx.alerts.create({ type: 'new_device', userId: u.id, username: `user${i}`, data: { sessionId: 's', ip: '10.0.0.1', device } }))
    raised.push(await app.ctx.alerts.create({ type: 'failed_login_threshold', userId: u.id, username: `user${i}`, data: { failures: 5, windowSeconds: 900, ip: null } }))
  }
  const ids = raised.map((a) => a!.id)
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  const [{ id: adminId }] = (await app.ctx.database.sql`select id from users where username = 'admin'`) as unknown as [{ id: number }]

  const all = await admin.get('/admin/alerts')
  t.equal(all.statusCode, 200)
  t.same(
    all.json().items.map((a: { id: number }) => a.id),
    [...ids].reverse(),
    'newest first',
  )
  t.equal(all.json().nextCursor, null)
  t.same(all.json().items[0], raised.at(-1), 'the Alert shape')
  t.equal((await admin.get('/admin/alerts?type=new_device')).json().items.length, 3)

  const seen: number[] = []
  let cursor: string | null = null
  let pages = 0
  do {
    const page = (await admin.get(`/admin/alerts?limit=4${cursor ? `&cursor=${cursor}` : ''}`)).json() as { items: { id: number }[]; nextCursor: string | null }
    seen.push(...page.items.map((a) => a.id))
    cursor = page.nextCursor
    pages++
  } while (cursor)
  t.equal(pages, 2)
  t.same(seen, [...ids].reverse(), 'pages neither skip nor repeat')
  const typed = (await admin.get('/admin/alerts?type=failed_login_threshold&limit=2')).json()
  t.equal(typed.items.length, 2)
  t.same((await admin.get(`/admin/alerts?type=failed_login_threshold&limit=2&cursor=${typed.nextCursor}`)).json().items.map((a: { id: number }) => a.id), [ids[1]])

  const target = ids[2]!
  const ack = await admin.post(`/admin/alerts/${target}/ack`)
  t.equal(ack.statusCode, 200)
  t.match(ack.json(), { id: target, acknowledged: true, acknowledgedAt: String, acknowledgedBy: adminId })
  const again = await admin.post(`/admin/alerts/${target}/ack`)
  t.equal(again.statusCode, 200, 'acknowledging twice is fine')
  t.same(again.json(), ack.json(), 'and changes nothing')
  const audit = await app.ctx.database.sql`select actor_user_id, user_id, data from audit_events where type = 'alert.acknowledged'`
  t.match([...audit], [{ actor_user_id: adminId, user_id: users[1]!.id, data: { alertId: target, alertType: 'new_device' } }], 'audited once')
  t.same((await admin.get('/admin/alerts?acknowledged=true')).json().items.map((a: { id: number }) => a.id), [target])
  t.equal((await admin.get('/admin/alerts?acknowledged=false')).json().items.length, 5)

  const missing = await admin.post('/admin/alerts/999999/ack')
  t.equal(missing.statusCode, 404)
  t.equal(missing.json().error.code, 'ALERT_NOT_FOUND')
  for (const bad of ['limit=0', 'limit=501', 'type=bogus', 'acknowledged=maybe', 'cursor=%%%', `cursor=${Buffer.from('12').toString('base64url')}`, 'extra=1']) {
    const res = await admin.get(`/admin/alerts?${bad}`)
    t.equal(res.statusCode, 400, bad)
    t.equal(res.json().error.code, 'VALIDATION_FAILED', bad)
  }
  t.equal((await admin.post('/admin/alerts/abc/ack')).statusCode, 400)

  const ada = await app.client().signIn('ada')
  for (const res of [await ada.get('/admin/alerts'), await ada.post(`/admin/alerts/${target}/ack`)]) {
    t.equal(res.statusCode, 403)
    t.equal(res.json().error.code, 'FORBIDDEN')
  }
  const anonymous = app.client()
  for (const res of [await anonymous.get('/admin/alerts'), await anonymous.post(`/admin/alerts/${target}/ack`)]) {
    t.equal(res.statusCode, 401)
    t.equal(res.json().error.code, 'UNAUTHENTICATED')
  }
})
