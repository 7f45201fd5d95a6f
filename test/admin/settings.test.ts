// The runtime Settings record (http.md, "Admin": GET/PUT /admin/sessions/config): versioned,
// validated field by field, audited, and in force on every node within a second.
import t from 'tap'
import { ADMIN_PASSWORD, build, Client, PASSWORD, type TestApp } from '../helpers/app.js'
import { listen, openTab } from '../helpers/ws.js'

const signInAdmin = (app: TestApp) => app.client().signIn('admin', ADMIN_PASSWORD)

const DEFAULTS = {
  idleAfterSeconds: 900,
  idleTimeoutSeconds: 7200,
  lifetimeSeconds: 172800,
  idleWarningSeconds: 60,
  concurrentLimits: { byRole: {}, byUser: {}, default: 5 },
  limitPolicy: 'terminate_oldest',
  failedLogin: { threshold: 5, windowSeconds: 900, lockoutEnabled: true, lockoutSeconds: 900, byUser: {} },
  anomaly: { distinctIps: 3, windowHours: 24 },
}

t.test('the settings start at version 1 with the defaults of the configuration', async (t) => {
  const app = await build(t)
  const admin = await signInAdmin(app)
  const res = await admin.get('/admin/sessions/config')
  t.equal(res.statusCode, 200)
  const { version, updatedAt, updatedBy, ...values } = res.json()
  t.same(values, DEFAULTS)
  t.equal(version, 1)
  t.equal(updatedBy, null)
  t.ok(Number.isFinite(Date.parse(updatedAt)), 'updatedAt is a time')
})

t.test('the environment gives the initial values', async (t) => {
  const app = await build(t, {
    SESSION_IDLE_AFTER_SECONDS: '300',
    SESSION_IDLE_TIMEOUT_SECONDS: '1800',
    SESSION_MAX_CONCURRENT_PER_USER: '2',
    SESSION_LIMIT_POLICY: 'block_new',
    FAILED_LOGIN_THRESHOLD: '7',
    FAILED_LOGIN_LOCKOUT_SECONDS: '0',
    ANOMALY_DISTINCT_IPS: '4',
  })
  const admin = await signInAdmin(app)
  t.match((await admin.get('/admin/sessions/config')).json(), {
    idleAfterSeconds: 300,
    idleTimeoutSeconds: 1800,
    concurrentLimits: { default: 2 },
    limitPolicy: 'block_new',
    failedLogin: { threshold: 7, lockoutEnabled: false },
    anomaly: { distinctIps: 4 },
    version: 1,
  })
})

t.test('a partial change merges into the record, bumps the version and is audited', async (t) => {
  const app = await build(t)
  const admin = await signInAdmin(app)
  const adminId = (await admin.get('/api/session_state')).json().user.id
  const before = (await admin.get('/admin/sessions/config')).json()

  const res = await admin.put('/admin/sessions/config', { concurrentLimits: { byRole: { reviewer: 1 } }, idleWarningSeconds: 120 })
  t.equal(res.statusCode, 200)
  const after = res.json()
  t.same(after.concurrentLimits, { byRole: { reviewer: 1 }, byUser: {}, default: 5 }, 'the nested default is kept')
  t.equal(after.idleWarningSeconds, 120)
  t.same(after.failedLogin, DEFAULTS.failedLogin, 'untouched fields are kept')
  t.equal(after.version, before.version + 1)
  t.equal(after.updatedBy, adminId)
  t.ok(Date.parse(after.updatedAt) > Date.parse(before.updatedAt), 'updatedAt moves')
  t.ok(Math.abs(Date.parse(after.updatedAt) - Date.now()) < 60_000)
  t.same((await admin.get('/admin/sessions/config')).json(), after, 'GET shows the change')

  const second = (await admin.put('/admin/sessions/config', { failedLogin: { threshold: 3 } })).json()
  t.equal(second.version, before.version + 2)
  t.same(second.failedLogin, { ...DEFAULTS.failedLogin, threshold: 3 })
  t.same(second.concurrentLimits, after.concurrentLimits, 'an earlier change survives a later one')

  const audit = await app.ctx.database.sql`select actor_user_id, data from audit_events where type = 'settings.changed' order by id`
  t.equal(audit.length, 2)
  t.equal(audit[0]!.actor_user_id, adminId)
  t.match(audit[0]!.data, {
    before: { idleWarningSeconds: 60, concurrentLimits: { byRole: {}, default: 5 } },
    after: { idleWarningSeconds: 120, concurrentLimits: { byRole: { reviewer: 1 }, default: 5 } },
  })
})

t.test('a bad settings value is VALIDATION_FAILED naming the field, and nothing changes', async (t) => {
  const app = await build(t)
  const admin = await signInAdmin(app)
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['a number as a string', { idleAfterSeconds: '900' }, /idleAfterSeconds/],
    ['a fraction', { lifetimeSeconds: 3600.5 }, /lifetimeSeconds/],
    ['a boolean of the wrong type', { failedLogin: { lockoutEnabled: 'yes' } }, /lockoutEnabled/],
    ['an unknown policy', { limitPolicy: 'random' }, /limitPolicy/],
    ['a lifetime below the minimum', { lifetimeSeconds: 10 }, /lifetimeSeconds/],
    ['a negative warning', { idleWarningSeconds: -1 }, /idleWarningSeconds/],
    ['a zero limit', { concurrentLimits: { default: 0 } }, /default/],
    ['a limit above the maximum', { concurrentLimits: { default: 10_001 } }, /default/],
    ['a zero threshold', { failedLogin: { threshold: 0 } }, /threshold/],
    ['an unknown field', { sessionTimeout: 5 }, /sessionTimeout/],
    // Guards a fixed bug: unknown fields inside a partial nested object were saved.
    ['an unknown field in anomaly', { anomaly: { distinctIps: 3, everything: true } }, /anomaly\.everything/],
    ['an unknown field in concurrentLimits', { concurrentLimits: { perIp: 2 } }, /concurrentLimits\.perIp/],
    ['an unknown field in failedLogin', { failedLogin: { lockoutForever: true } }, /failedLogin\.lockoutForever/],
    ['an unknown role', { concurrentLimits: { byRole: { wizard: 2 } } }, /byRole\.wizard/],
    ['a role name that cannot be one', { concurrentLimits: { byRole: { Admin: 2 } } }, /byRole\.Admin/],
    ['a user key that is not an id', { concurrentLimits: { byUser: { ada: 2 } } }, /byUser\.ada/],
    ['a lockout threshold key that is not an id', { failedLogin: { byUser: { '0': 2 } } }, /byUser\.0/],
    ['idle timeout not above idle-after', { idleTimeoutSeconds: 900 }, /idleTimeoutSeconds/],
    ['idle-after raised to the idle timeout', { idleAfterSeconds: 7200 }, /idleAfterSeconds|idleTimeoutSeconds/],
    ['a warning as long as the timeout', { idleWarningSeconds: 7200 }, /idleWarningSeconds/],
  ]
  for (const [what, body, field] of cases) {
    const res = await admin.put('/admin/sessions/config', body)
    t.equal(res.statusCode, 400, what)
    t.equal(res.json().error.code, 'VALIDATION_FAILED', what)
    t.match(res.json().error.message, field, `${what}: ${res.json().error.message}`)
  }
  const now = (await admin.get('/admin/sessions/config')).json()
  t.equal(now.version, 1, 'no refused change was saved')
  const [row] = await app.ctx.database.sql`select data from settings`
  t.same(row!.data, DEFAULTS, 'the stored record holds nothing but the defaults')
  t.same(
    (await app.ctx.database.sql`select 1 from audit_events where type = 'settings.changed'`).length,
    0,
  )
})

t.test('a change with a stale expectedVersion is VERSION_CONFLICT', async (t) => {
  const app = await build(t)
  const admin = await signInAdmin(app)
  const first = await admin.put('/admin/sessions/config', { idleWarningSeconds: 90, expectedVersion: 1 })
  t.equal(first.statusCode, 200, 'the current version is accepted')
  t.equal(first.json().version, 2)

  const stale = await admin.put('/admin/sessions/config', { idleWarningSeconds: 30, expectedVersion: 1 })
  t.equal(stale.statusCode, 409)
  t.equal(stale.json().error.code, 'VERSION_CONFLICT')
  t.match(stale.json().error.current, { version: 2, idleWarningSeconds: 90 })
  t.equal((await admin.get('/admin/sessions/config')).json().idleWarningSeconds, 90, 'the stale change was not applied')
  t.notOk('expectedVersion' in first.json(), 'expectedVersion is not stored as a setting')
})

t.test('a lower concurrent-session limit is in force at the next sign-in', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const admin = await signInAdmin(app)
  const laptop = await app.client().signIn('ada')
  t.equal((await admin.put('/admin/sessions/config', { concurrentLimits: { default: 1 } })).statusCode, 200)

  const phone = await app.client().signIn('ada')
  const res = await laptop.get('/api/session_state')
  t.equal(res.statusCode, 401)
  t.match(res.json(), { error: { code: 'SESSION_TERMINATED', reason: 'session_limit' } })
  t.equal((await phone.get('/api/session_state')).statusCode, 200)
})

t.test('a limit by role beats the default', async (t) => {
  const app = await build(t)
  await app.user('rita', { role: 'reviewer' })
  await app.user('uma')
  const admin = await signInAdmin(app)
  await admin.put('/admin/sessions/config', { concurrentLimits: { byRole: { reviewer: 1 } } })

  const rita1 = await app.client().signIn('rita')
  await app.client().signIn('rita')
  t.equal((await rita1.get('/api/session_state')).statusCode, 401, 'a reviewer keeps one session')

  const uma1 = await app.client().signIn('uma')
  await app.client().signIn('uma')
  t.equal((await uma1.get('/api/session_state')).statusCode, 200, 'a user keeps the default five')
})

t.test('a settings change made through one node is in force on another: its limits and its tabs', async (t) => {
  const one = await build(t)
  await one.user('ada')
  const two = await one.node()
  const adminOne = await signInAdmin(one)
  const onTwo = () => new Client(two.app, {})
  const tab = (await openTab(await listen(two), (await onTwo().signIn('ada')).sid!, { tabId: 'A' })).tab
  await onTwo().signIn('ada')
  const activeOfAda = async () =>
    (await one.ctx.database.sql`select count(*)::int as n from sessions s join users u on u.id = s.user_id where u.username = 'ada' and s.status = 'active'`)[0]!.n
  t.equal(await activeOfAda(), 2, 'node two has read (and cached) the default limit of five')

  const changed = await adminOne.put('/admin/sessions/config', { concurrentLimits: { default: 1 }, idleAfterSeconds: 300 })
  t.equal(changed.statusCode, 200)
  t.match(await tab.type('config.changed'), { idleAfterMs: 300_000 }, "node two's tab hears of the new idle threshold")

  // Sign-ins through node two until it enforces the limit (generous: it must happen within about a second).
  let enforced = false
  for (let i = 0; i < 40 && !enforced; i++) {
    await onTwo().signIn('ada')
    enforced = (await activeOfAda()) === 1
    if (!enforced) await new Promise((r) => setTimeout(r, 100))
  }
  t.ok(enforced, 'node two ends the older sessions: one is left')
  t.match((await onTwo().signIn('ada').then((c) => c.get('/api/session_state'))).json(), { user: { username: 'ada' } })
  t.equal(await activeOfAda(), 1, 'and keeps it at one')
})

t.test('config.changed is judged by the change itself, not by a node’s cached settings', async (t) => {
  const one = await build(t)
  await one.user('ada')
  const two = await one.node()
  const adminOne = await signInAdmin(one)
  const adminTwo = await new Client(two.app, {}).signIn('admin', ADMIN_PASSWORD)
  const ada = await one.client().signIn('ada')
  const { tab } = await openTab(await listen(one), ada.sid!, { tabId: 'A' })
  t.equal((await adminTwo.get('/admin/sessions/config')).json().idleAfterSeconds, 900, 'node two caches 900')
  await adminOne.put('/admin/sessions/config', { idleAfterSeconds: 120 })
  // Node two may still hold 900 in its cache: setting 900 again is a change all the same.
  await adminTwo.put('/admin/sessions/config', { idleAfterSeconds: 900 })
  const first = await tab.next((m) => m.type === 'config.changed')
  const second = await tab.next((m) => m.type === 'config.changed' && m !== first)
  t.same([first.idleAfterMs, second.idleAfterMs], [120_000, 900_000])
})

t.test('a change that changes nothing is 200 with the current settings, no new version and no audit entry', async (t) => {
  const app = await build(t)
  const admin = await signInAdmin(app)
  const changed = (await admin.put('/admin/sessions/config', { idleWarningSeconds: 90, concurrentLimits: { byRole: { reviewer: 1, admin: 3 } } })).json()
  t.equal(changed.version, 2)
  for (const [what, body] of [
    ['an empty body', {}],
    ['the same value', { idleWarningSeconds: 90 }],
    ['an empty nested object', { failedLogin: {} }],
    ['the same map in another key order', { concurrentLimits: { byRole: { admin: 3, reviewer: 1 } } }],
    ['with the current expectedVersion', { idleWarningSeconds: 90, expectedVersion: 2 }],
  ] as const) {
    const res = await admin.put('/admin/sessions/config', body)
    t.equal(res.statusCode, 200, what)
    t.same(res.json(), changed, `${what}: the current settings, unchanged`)
  }
  const empty = await admin.request('PUT', '/admin/sessions/config')
  t.equal(empty.statusCode, 200, 'no body at all')
  t.equal(empty.json().version, 2)
  t.equal((await admin.put('/admin/sessions/config', { idleWarningSeconds: 90, expectedVersion: 1 })).statusCode, 409, 'a stale version is still a conflict')
  const audit = await app.ctx.database.sql`select 1 from audit_events where type = 'settings.changed'`
  t.equal(audit.length, 1, 'only the real change is audited')
})

t.test('failedLogin.byUser and lockoutEnabled set through PUT are in force', async (t) => {
  const app = await build(t)
  const ada = await app.user('ada')
  await app.user('bob')
  const admin = await signInAdmin(app)
  const res = await admin.put('/admin/sessions/config', { failedLogin: { threshold: 4, byUser: { [String(ada.id)]: 2 } } })
  t.equal(res.statusCode, 200)
  t.same(res.json().failedLogin.byUser, { [String(ada.id)]: 2 })
  const fail = async (name: string) => (await app.client().login(name, 'wrong-password-x')).statusCode
  t.same([await fail('ada'), await fail('ada')], [401, 423], "ada's own threshold of 2 locks her at the second failure")
  t.same([await fail('bob'), await fail('bob'), await fail('bob'), await fail('bob')], [401, 401, 401, 423], 'bob has the global threshold of 4')

  t.equal((await admin.put('/admin/sessions/config', { failedLogin: { lockoutEnabled: false } })).statusCode, 200)
  await admin.post(`/admin/users/${ada.id}/unlock`)
  const codes: number[] = []
  for (let i = 0; i < 5; i++) codes.push(await fail('ada'))
  t.same(codes, [401, 401, 401, 401, 401], 'with lockout off, failures never lock')
  t.equal((await app.client().login('ada', PASSWORD)).statusCode, 200, 'and the right password still works')
  const alerts = await app.ctx.database.sql`select type from alerts where user_id = ${ada.id} order by id`
  t.same(
    alerts.map((a) => a.type),
    ['failed_login_threshold', 'account_locked'],
    'the breach without lockout falls in the same alert window: nothing new',
  )
})
