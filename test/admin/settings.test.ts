// The runtime Settings record (http.md, "Admin": GET/PUT /admin/sessions/config): versioned,
// validated field by field, audited, and in force on every node within a second.
import t from 'tap'
import { ADMIN_PASSWORD, build, Client, type TestApp } from '../helpers/app.js'

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

t.test('a change made on one node is seen by another node within a second or so', async (t) => {
  const one = await build(t)
  const two = await one.node()

  const adminOne = await signInAdmin(one)
  const adminTwo = await new Client(two.app, {}).signIn('admin', ADMIN_PASSWORD)
  // Both nodes have read (and cached) version 1.
  t.equal((await adminTwo.get('/admin/sessions/config')).json().idleWarningSeconds, 60)

  const changed = await adminOne.put('/admin/sessions/config', { idleWarningSeconds: 45 })
  t.equal(changed.statusCode, 200)
  const changedAt = Date.now()

  let seen: { version: number; idleWarningSeconds: number } | undefined
  while (Date.now() - changedAt < 3000) {
    const res = await adminTwo.get('/admin/sessions/config')
    t.equal(res.statusCode, 200)
    if (res.json().version === changed.json().version) {
      seen = res.json()
      break
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.ok(seen, 'the other node sees the new version')
  t.equal(seen?.idleWarningSeconds, 45)
  t.comment(`seen after ${Date.now() - changedAt} ms`)
  await two.close()
})
