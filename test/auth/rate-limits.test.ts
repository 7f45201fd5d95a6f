// Rate limits count every request, refused ones included (the limit runs before the
// session guard), and a flood of made-up cookies cannot buy itself fresh budgets.
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { build, PASSWORD } from '../helpers/app.js'

const bogus = () => `sid=${randomBytes(32).toString('base64url')}`

t.test('requests without a session are counted: 401s run into 429 (per IP)', async (t) => {
  const app = await build(t, { API_RATE_LIMIT: '3/min' })
  const codes: number[] = []
  for (let i = 0; i < 13; i++) codes.push((await app.client().get('/api/session_state')).statusCode)
  t.same(codes, [401, 401, 401, ...Array(10).fill(429)])
  const other = await app.app.inject({ method: 'GET', url: '/api/session_state', remoteAddress: '10.1.2.3' })
  t.equal(other.statusCode, 401, 'another IP has its own budget')
})

t.test('a flood of random bogus cookies shares one per-IP budget; real sessions keep theirs', async (t) => {
  const app = await build(t, { API_RATE_LIMIT: '3/min' })
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  const codes: number[] = []
  for (let i = 0; i < 13; i++) codes.push((await app.client().get('/api/session_state', { cookie: bogus() })).statusCode)
  t.same(codes, [401, 401, 401, ...Array(10).fill(429)], 'each made-up token does not get a fresh budget')
  t.equal((await app.client().get('/api/platforms')).statusCode, 429, 'no cookie at all shares the same IP budget')
  t.equal((await ada.get('/api/platforms')).statusCode, 200, 'a signed-in session from the same IP is not affected')
})

t.test('requests refused for a missing CSRF token are counted against the session', async (t) => {
  const app = await build(t, { API_RATE_LIMIT: '3/min' })
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  const codes: number[] = []
  for (let i = 0; i < 5; i++) codes.push((await ada.post('/api/session/cleanup', undefined, { 'x-csrf-token': '' })).statusCode)
  t.same(codes, [403, 403, 403, 429, 429])
  const limited = await ada.get('/api/platforms')
  t.equal(limited.statusCode, 429, 'the session’s budget is spent')
  t.match(limited.json(), { error: { code: 'RATE_LIMITED', retryAfterSeconds: Number } })
})

t.test('a known but ended session is limited as that session, not as a fresh bucket', async (t) => {
  const app = await build(t, { API_RATE_LIMIT: '2/min' })
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  const token = ada.sid!
  t.equal((await ada.post('/api/auth/logout')).statusCode, 204)
  const codes: number[] = []
  for (let i = 0; i < 3; i++) codes.push((await app.client().get('/api/session_state', { cookie: `sid=${token}` })).statusCode)
  t.same(codes, [401, 429, 429], 'logout spent one request of the budget, one 401, then 429')
  t.equal((await app.client().get('/api/session_state')).statusCode, 401, 'the IP budget is separate')
})

t.test('the two UUID routes share one per-IP budget, with Retry-After and retryAfterSeconds', async (t) => {
  const app = await build(t, { UUID_RATE_LIMIT: '3/min' })
  await app.user('ada')
  await app.user('bob')
  const ada = await app.client().signIn('ada')
  const bob = await app.client().signIn('bob')
  t.equal((await ada.post('/api/session/generate-uuid')).statusCode, 200)
  t.equal((await ada.post('/api/session/validate-uuid', { uuid: ada.sessionId })).statusCode, 200)
  t.equal((await ada.post('/api/session/generate-uuid')).statusCode, 200)
  const limited = await bob.post('/api/session/validate-uuid', { uuid: ada.sessionId })
  t.equal(limited.statusCode, 429, 'the fourth call, on the other route and from another session of the same IP')
  t.equal(limited.json().error.code, 'RATE_LIMITED')
  const after = limited.json().error.retryAfterSeconds
  t.ok(after > 0 && after <= 60, 'retryAfterSeconds within the window')
  t.equal(limited.headers['retry-after'], String(after))
  t.equal((await ada.post('/api/session/generate-uuid')).statusCode, 429, 'both routes are limited')
  t.equal((await ada.get('/api/platforms')).statusCode, 200, 'the UUID budget is not the API budget')
  const elsewhere = await app.app.inject({
    method: 'POST',
    url: '/api/session/generate-uuid',
    remoteAddress: '10.9.8.7',
    headers: { cookie: `sid=${ada.sid}`, 'x-csrf-token': ada.csrf!, 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0 Safari/537.36' },
  })
  t.equal(elsewhere.statusCode, 200, 'another IP has its own UUID budget')
})

t.test('a login refused by the rate limit is written to login history', async (t) => {
  const app = await build(t, { LOGIN_RATE_LIMIT: '2/min' })
  const { id } = await app.user('ada')
  await app.client().login('ada', 'wrong-password')
  await app.client().login('ada')
  const limited = await app.client({ 'user-agent': 'curl/8.4.0' }).login('ada')
  t.equal(limited.statusCode, 429)
  t.equal((await app.client().post('/api/auth/login', { password: 'x' })).statusCode, 429, 'also without a username')
  const rows = await app.ctx.database.sql`select user_id, username, success, reason, host(ip) as ip, user_agent from login_attempts order by id`
  t.match(rows, [
    { reason: 'wrong_password' },
    { reason: 'ok' },
    { user_id: id, username: 'ada', success: false, reason: 'rate_limited', ip: '127.0.0.1', user_agent: 'curl/8.4.0' },
    { user_id: null, username: '', success: false, reason: 'rate_limited' },
  ])
  t.equal(rows.length, 4)
  const metrics = (await app.app.inject({ method: 'GET', url: '/metrics' })).body
  t.match(metrics, /^tessera_logins_total\{result="rate_limited"\} 2$/m)
})

t.test('a login refused for its foreign Origin is not a login attempt and spends no login budget', async (t) => {
  const app = await build(t, { LOGIN_RATE_LIMIT: '1/min' })
  await app.user('ada')
  for (let i = 0; i < 3; i++) {
    const res = await app.app.inject({ method: 'POST', url: '/api/auth/login', headers: { origin: 'https://evil.example' }, payload: { username: 'ada', password: PASSWORD } })
    t.equal(res.statusCode, 403)
  }
  const [row] = await app.ctx.database.sql`select count(*)::int as n from login_attempts`
  t.equal(row!.n, 0, 'nothing in login history: the credentials were never looked at')
  t.equal((await app.client().login('ada')).statusCode, 200, 'the IP can still sign in')
})
