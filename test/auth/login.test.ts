import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { build, PASSWORD } from '../helpers/app.js'
import { listen, openTab } from '../helpers/ws.js'

t.test('signing in returns the user, the session and a CSRF token, and sets an HttpOnly cookie', async (t) => {
  const app = await build(t)
  await app.user('ada', { platforms: ['Pixelfed', 'Mastodon'] })
  const res = await app.client().login('ada')
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.match(body, {
    user: { username: 'ada', role: 'user', email: 'ada@example.com' },
    session: { username: 'ada', status: 'active', tabs: 0, platform: { name: 'Pixelfed' }, device: { browser: 'Chrome 140', os: 'Linux' } },
    csrfToken: String,
  })
  t.ok(Date.parse(body.session.expiresAt) > Date.now())
  const cookie = res.cookies.find((c) => c.name === 'sid')!
  t.ok(cookie.httpOnly, 'HttpOnly')
  t.equal(cookie.sameSite, 'Lax')
  t.equal(cookie.path, '/')
  t.notOk(cookie.secure, 'not Secure unless COOKIE_SECURE')
  t.equal(Buffer.from(cookie.value, 'base64url').length, 32, '32 random bytes')
})

t.test('the Secure flag follows COOKIE_SECURE', async (t) => {
  const app = await build(t, { COOKIE_SECURE: 'true' })
  await app.user('ada')
  const res = await app.client().login('ada')
  t.ok(res.cookies.find((c) => c.name === 'sid')!.secure)
})

t.test('an unknown user and a wrong password get the same answer', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const unknown = await app.client().login('nobody', PASSWORD)
  const wrong = await app.client().login('ada', 'not-the-password')
  t.equal(unknown.statusCode, 401)
  t.equal(wrong.statusCode, 401)
  t.same(unknown.json(), wrong.json())
  t.equal(wrong.json().error.code, 'INVALID_CREDENTIALS')
  t.notOk(unknown.cookies.some((c) => c.name === 'sid' && c.value), 'no cookie on failure')
})

t.test('usernames are case-insensitive', async (t) => {
  const app = await build(t)
  await app.user('Ada')
  t.equal((await app.client().login('ADA')).statusCode, 200)
})

t.test('login input is validated with the field named', async (t) => {
  const app = await build(t)
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ username: 'ada' }, /password/],
    [{ password: 'x' }, /username/],
    [{ username: 'ada', password: 'x', extra: 1 }, /extra/],
    [{ username: 42, password: 'x' }, /username/],
    [{ username: 'ada', password: 'x', endSessionId: 'not-a-uuid' }, /endSessionId/],
    [{ username: 'a'.repeat(201), password: 'x' }, /username/],
  ]
  for (const [body, field] of cases) {
    const res = await app.client().post('/api/auth/login', body)
    t.equal(res.statusCode, 400, JSON.stringify(body))
    t.equal(res.json().error.code, 'VALIDATION_FAILED')
    t.match(res.json().error.message, field)
  }
})

t.test('every attempt, good or bad, is written to login history', async (t) => {
  const app = await build(t)
  await app.user('ada')
  await app.client().login('ada', 'wrong-password')
  await app.client().login('ghost', 'whatever')
  await app.client().login('ada')
  const rows = await app.ctx.database.sql`select username, success, reason, ip, user_agent, session_id from login_attempts order by id`
  t.match(rows, [
    { username: 'ada', success: false, reason: 'wrong_password', ip: '127.0.0.1', user_agent: /Chrome/ },
    { username: 'ghost', success: false, reason: 'unknown_user' },
    { username: 'ada', success: true, reason: 'ok', session_id: String },
  ])
})

t.test('a login from a device or IP the user has not used before is flagged new_device, the first one too', async (t) => {
  const app = await build(t)
  await app.user('ada')
  await app.client().signIn('ada')
  await app.client().signIn('ada')
  await app.client({ 'user-agent': 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Version/17.0 Mobile/15E148 Safari/604.1' }).signIn('ada')
  const rows = await app.ctx.database.sql`select flags from login_attempts where success order by id`
  t.same(
    rows.map((r) => r.flags),
    [['new_device'], [], ['new_device']],
  )
})

t.test('a new login tells the user’s other sessions (user.notice)', async (t) => {
  const app = await build(t)
  await app.user('ada')
  await app.user('bob')
  const address = await listen(app)
  const laptop = await app.client().signIn('ada')
  const bob = await app.client().signIn('bob')
  // The open tabs of ada's laptop, and one of another user who must hear nothing.
  const tabs = [(await openTab(address, laptop.sid!, { tabId: 'L1' })).tab, (await openTab(address, laptop.sid!, { tabId: 'L2' })).tab]
  const bobs = (await openTab(address, bob.sid!, { tabId: 'B1' })).tab
  await app.client().signIn('ada') // her phone
  for (const [i, tab] of tabs.entries()) {
    t.match(await tab.type('user.notice'), { type: 'user.notice', kind: 'new_login', ip: '127.0.0.1', device: { os: 'Linux' }, at: String }, `laptop tab ${i + 1} is told`)
  }
  // Bob's tab is on the same node: the notice has been dispatched by the time ada's tabs have it.
  bobs.send({ type: 'ping', id: 1 })
  await bobs.next((m) => m.type === 'pong')
  t.notOk(bobs.messages.some((m) => m.type === 'user.notice'), 'another user’s tab is not')
})

t.test('login never reuses a presented token (no fixation)', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const planted = Buffer.alloc(32, 7).toString('base64url')
  const res = await app.client().post('/api/auth/login', { username: 'ada', password: PASSWORD }, { cookie: `sid=${planted}` })
  t.equal(res.statusCode, 200)
  const issued = res.cookies.find((c) => c.name === 'sid')!.value
  t.not(issued, planted)
  const attacker = await app.client().get('/api/session_state', { cookie: `sid=${planted}` })
  t.equal(attacker.statusCode, 401)
  t.equal(attacker.json().error.code, 'UNAUTHENTICATED')
})

t.test('only SHA-256 hashes of tokens are stored, in PostgreSQL and in Redis', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  await ada.get('/api/session_state')
  const token = ada.sid!
  const [row] = await app.ctx.database.sql`select s::text as whole, token_hash from sessions s`
  t.equal(row!.token_hash, createHash('sha256').update(token).digest('hex'))
  t.notOk(String(row!.whole).includes(token), 'the token appears nowhere in the row')
  // Every kind of key a live session leaves: a tab (presence, sets, sorted sets), an event
  // (the log stream), a lock, a platform switch; and an ended session of the same user.
  const address = await listen(app)
  const { tab } = await openTab(address, token, { tabId: 'A' })
  t.equal((await ada.post('/api/locks', { resource: 'doc' })).statusCode, 201)
  const other = await app.client().signIn('ada')
  const endedToken = other.sid!
  t.equal((await other.post('/api/auth/logout')).statusCode, 204)
  await tab.next((m) => m.type === 'user.notice' && m.kind === 'session_ended_elsewhere')
  const { redis } = app.resources
  // Each token as the cookie has it, and its 32 bytes in hex and in plain base64.
  const secrets = [token, endedToken].flatMap((s) => [s, Buffer.from(s, 'base64url').toString('hex'), Buffer.from(s, 'base64url').toString('base64')])
  const holds = (text: string) => secrets.some((s) => text.includes(s))
  const keys: string[] = []
  for (let cursor = '0'; ; ) {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${app.prefix}*`, 'COUNT', 1000)
    keys.push(...batch)
    cursor = next
    if (cursor === '0') break
  }
  const types = new Map<string, number>()
  for (const key of keys) {
    t.notOk(holds(key), `key ${key} holds no token`)
    const type = await redis.type(key)
    types.set(type, (types.get(type) ?? 0) + 1)
    let content: string[]
    switch (type) {
      case 'string':
        content = [(await redis.get(key)) ?? '']
        break
      case 'hash':
        content = Object.entries(await redis.hgetall(key)).flat()
        break
      case 'list':
        content = await redis.lrange(key, 0, -1)
        break
      case 'set':
        content = await redis.smembers(key)
        break
      case 'zset':
        content = await redis.zrange(key, '0', '-1')
        break
      case 'stream':
        content = (await redis.xrange(key, '-', '+')).flatMap(([id, fields]) => [id, ...fields])
        break
      case 'none':
        continue // expired between SCAN and TYPE
      default:
        content = []
        t.fail(`key ${key} is of a type this scan cannot read: ${type}`)
    }
    t.notOk(content.some(holds), `the ${type} ${key} holds no token`)
  }
  t.ok(['string', 'hash', 'set', 'zset', 'stream'].every((type) => types.has(type)), `every kind of key was read: ${JSON.stringify(Object.fromEntries(types))}`)
})

t.test('failed logins lock the account after the threshold, and the lock ends by itself', async (t) => {
  const app = await build(t, { FAILED_LOGIN_THRESHOLD: '3', FAILED_LOGIN_LOCKOUT_SECONDS: '2' })
  await app.user('ada')
  for (let i = 0; i < 2; i++) t.equal((await app.client().login('ada', 'wrong-password')).statusCode, 401)
  const locking = await app.client().login('ada', 'wrong-password')
  t.equal(locking.statusCode, 423, 'the attempt that reaches the threshold locks')
  const locked = await app.client().login('ada', PASSWORD)
  t.equal(locked.statusCode, 423, 'even the right password is refused while locked')
  t.equal(locked.json().error.code, 'ACCOUNT_LOCKED')
  t.ok(locked.json().error.retryAfterSeconds >= 1 && locked.json().error.retryAfterSeconds <= 2)
  t.equal(locked.headers['retry-after'], String(locked.json().error.retryAfterSeconds))
  const [{ locked_until }] = (await app.ctx.database.sql`select locked_until from users where username = 'ada'`) as unknown as [{ locked_until: Date }]
  t.ok(locked_until.getTime() > Date.now(), 'the lock is durable in PostgreSQL')
  await sleep(2100)
  t.equal((await app.client().login('ada', PASSWORD)).statusCode, 200, 'the lock ended')
  const reasons = await app.ctx.database.sql`select reason from login_attempts order by id`
  t.same(
    reasons.map((r) => r.reason),
    ['wrong_password', 'wrong_password', 'wrong_password', 'locked', 'ok'],
  )
})

t.test('an unknown username locks like a real one, so lockout reveals nothing', async (t) => {
  const app = await build(t, { FAILED_LOGIN_THRESHOLD: '2' })
  await app.user('ada')
  const answers = async (name: string) => {
    const codes: number[] = []
    for (let i = 0; i < 3; i++) codes.push((await app.client().login(name, 'wrong-password')).statusCode)
    return codes
  }
  t.same(await answers('ada'), [401, 423, 423])
  t.same(await answers('ghost'), [401, 423, 423])
})

t.test('with lockout off, failures never lock', async (t) => {
  const app = await build(t, { FAILED_LOGIN_THRESHOLD: '2', FAILED_LOGIN_LOCKOUT_SECONDS: '0' })
  await app.user('ada')
  for (let i = 0; i < 4; i++) t.equal((await app.client().login('ada', 'wrong-password')).statusCode, 401)
  t.equal((await app.client().login('ada')).statusCode, 200)
})

t.test('a successful login resets the failure count', async (t) => {
  const app = await build(t, { FAILED_LOGIN_THRESHOLD: '3' })
  await app.user('ada')
  await app.client().login('ada', 'wrong-password')
  await app.client().login('ada', 'wrong-password')
  await app.client().signIn('ada')
  await app.client().login('ada', 'wrong-password')
  t.equal((await app.client().login('ada', 'wrong-password')).statusCode, 401, 'two new failures do not lock')
})

t.test('login is rate limited per IP with 429, Retry-After and retryAfterSeconds', async (t) => {
  const app = await build(t, { LOGIN_RATE_LIMIT: '3/min' })
  await app.user('ada')
  for (let i = 0; i < 3; i++) t.not((await app.client().login('ada', 'wrong-password')).statusCode, 429)
  const limited = await app.client().login('ada')
  t.equal(limited.statusCode, 429)
  t.equal(limited.json().error.code, 'RATE_LIMITED')
  t.ok(limited.json().error.retryAfterSeconds > 0 && limited.json().error.retryAfterSeconds <= 60)
  t.equal(limited.headers['retry-after'], String(limited.json().error.retryAfterSeconds))
  const other = await app.app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: 'ada', password: PASSWORD }, remoteAddress: '10.9.8.7' })
  t.equal(other.statusCode, 200, 'another IP is not affected')
})

t.test('the login rate limit holds across two API nodes (counters in Redis)', async (t) => {
  const a = await build(t, { LOGIN_RATE_LIMIT: '2/min' })
  const b = await a.node()
  await a.user('ada')
  const login = (app: typeof b.app) => app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: 'ada', password: PASSWORD } })
  t.equal((await login(a.app)).statusCode, 200)
  t.equal((await login(b.app)).statusCode, 200)
  t.equal((await login(b.app)).statusCode, 429)
  t.equal((await login(a.app)).statusCode, 429)
})

t.test('login with platformId starts the session on that platform', async (t) => {
  const app = await build(t)
  const { platformIds } = await app.user('ada', { platforms: ['Pixelfed', 'Mastodon'] })
  const ada = app.client()
  const res = await ada.login('ada', PASSWORD, { platformId: platformIds[1] })
  t.equal(res.statusCode, 200)
  t.match(res.json().session.platform, { id: platformIds[1], name: 'Mastodon' })
  t.match((await ada.get('/api/session_state')).json().platform, { id: platformIds[1], name: 'Mastodon', isDefault: false })
})

t.test('login with a platformId that is not one of the user’s active connections is VALIDATION_FAILED', async (t) => {
  const app = await build(t)
  await app.user('ada', { platforms: ['Pixelfed'] })
  const { platformIds: bobs } = await app.user('bob', { platforms: ['Bobs'] })
  const { platformIds: off } = await app.user('cy', { platforms: ['Off'] })
  await app.ctx.database.sql`update platforms set active = false where id = ${off[0]!}`
  for (const [user, platformId] of [
    ['ada', bobs[0]!],
    ['ada', 999_999],
    ['cy', off[0]!],
  ] as const) {
    const res = await app.client().login(user, PASSWORD, { platformId })
    t.equal(res.statusCode, 400, `${user} → ${platformId}`)
    t.match(res.json(), { error: { code: 'VALIDATION_FAILED', message: /body\.platformId/ } })
    t.notOk(res.cookies.some((c) => c.name === 'sid' && c.value), 'no session was opened')
  }
  const [row] = await app.ctx.database.sql`select count(*)::int as n from sessions`
  t.equal(row!.n, 0)
})
