// Operations (http.md, "Operations" and "Conventions"): health, readiness, metrics, the
// OpenAPI document, and what every response carries whatever the route.
import t from 'tap'
import { build, PASSWORD } from '../helpers/app.js'

const errorShape = { error: { code: String, message: String } }

t.test('/healthz says the process is up', async (t) => {
  const app = await build(t)
  const res = await app.app.inject({ method: 'GET', url: '/healthz' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { status: 'ok' })
})

t.test('/readyz reports PostgreSQL, Redis and the queues with their latency', async (t) => {
  const app = await build(t)
  const res = await app.app.inject({ method: 'GET', url: '/readyz' })
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.equal(body.status, 'ready')
  t.same(Object.keys(body.checks).sort(), ['postgres', 'queues', 'redis'])
  for (const name of ['postgres', 'redis', 'queues']) {
    t.equal(body.checks[name].ok, true, name)
    t.type(body.checks[name].latencyMs, 'number', name)
    t.ok(body.checks[name].latencyMs >= 0, name)
  }
})

t.test('/metrics counts logins by result, sessions by status and HTTP latency', async (t) => {
  const app = await build(t)
  await app.user('ada')
  await app.client().signIn('ada')
  t.equal((await app.client().login('ada', 'wrong-password-x')).statusCode, 401)

  const res = await app.app.inject({ method: 'GET', url: '/metrics' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain/)
  const text = res.body
  t.match(text, /^# HELP tessera_logins_total /m)
  t.match(text, /^tessera_logins_total\{result="success"\} 1$/m)
  t.match(text, /^tessera_logins_total\{result="failure"\} 1$/m)
  t.match(text, /^tessera_sessions\{status="active"\} 1$/m)
  t.match(text, /^tessera_http_request_duration_seconds_bucket\{.*route="\/api\/auth\/login".*\} \d+$/m)
  t.match(text, /^tessera_http_request_duration_seconds_count\{/m)
})

t.test('/metrics needs the bearer token when METRICS_TOKEN is set', async (t) => {
  const app = await build(t, { METRICS_TOKEN: 'scrape-me-please' })
  const none = await app.app.inject({ method: 'GET', url: '/metrics' })
  t.equal(none.statusCode, 401)
  t.match(none.json(), errorShape)
  t.notMatch(none.body, /tessera_/, 'no metric leaks')

  const wrong = await app.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: 'Bearer guess' } })
  t.equal(wrong.statusCode, 401)

  const right = await app.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: 'Bearer scrape-me-please' } })
  t.equal(right.statusCode, 200)
  t.match(right.body, /tessera_logins_total/)
})

t.test('/metrics is open when no METRICS_TOKEN is set', async (t) => {
  const app = await build(t)
  t.equal((await app.app.inject({ method: 'GET', url: '/metrics' })).statusCode, 200)
})

t.test('/api/openapi.json is an OpenAPI 3 document of the routes', async (t) => {
  const app = await build(t)
  const res = await app.app.inject({ method: 'GET', url: '/api/openapi.json' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /application\/json/)
  const doc = res.json()
  t.match(doc.openapi, /^3\./)
  t.type(doc.info.title, 'string')
  for (const path of ['/api/auth/login', '/api/switch_platform/{platformId}', '/admin/users', '/api/platforms', '/admin/sessions/config']) {
    t.ok(doc.paths[path], `lists ${path}`)
  }
  t.ok(doc.paths['/api/auth/login'].post.requestBody, 'the login body is described')
  t.ok(doc.paths['/admin/users'].get && doc.paths['/admin/users'].post, 'both methods of /admin/users are listed')
})

t.test('/docs serves the API viewer as HTML with a Content-Security-Policy', async (t) => {
  const app = await build(t)
  let url = '/docs'
  let res = await app.app.inject({ method: 'GET', url })
  for (let hops = 0; res.statusCode >= 300 && res.statusCode < 400 && hops < 5; hops++) {
    url = new URL(res.headers.location as string, `http://localhost${url}`).pathname
    res = await app.app.inject({ method: 'GET', url })
  }
  t.equal(res.statusCode, 200, `GET ${url}`)
  t.match(res.headers['content-type'], /text\/html/)
  t.match(res.body, /<html/i)
  t.match(res.headers['content-security-policy'], /default-src 'self'/)
})

t.test('every response carries x-request-id, and a given one is echoed', async (t) => {
  const app = await build(t)
  const seen = new Set<string>()
  for (const [method, url] of [
    ['GET', '/healthz'],
    ['GET', '/api/session_state'],
    ['GET', '/no/such/route'],
    ['POST', '/api/auth/login'],
  ] as const) {
    const res = await app.app.inject({ method, url })
    const id = res.headers['x-request-id']
    t.type(id, 'string', `${method} ${url} (${res.statusCode})`)
    t.ok((id as string).length > 0)
    seen.add(id as string)
  }
  t.equal(seen.size, 4, 'each request has its own id')

  const echoed = await app.app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': 'trace-abc.123' } })
  t.equal(echoed.headers['x-request-id'], 'trace-abc.123')
  const refused = await app.app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': 'bad id\twith <html>' } })
  t.not(refused.headers['x-request-id'], 'bad id\twith <html>', 'an unsafe id is replaced, not echoed')
  t.type(refused.headers['x-request-id'], 'string')
})

t.test('API responses carry the security headers', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  for (const res of [await ada.get('/api/session_state'), await app.client().get('/api/session_state'), await ada.get('/healthz')]) {
    t.equal(res.headers['x-content-type-options'], 'nosniff', `${res.statusCode}`)
    t.match(res.headers['content-security-policy'], /default-src 'self'/, `${res.statusCode}`)
    t.ok(res.headers['x-frame-options'] || /frame-ancestors/.test(String(res.headers['content-security-policy'])), 'framing is refused')
  }
})

t.test('an unknown route is 404 in the error shape', async (t) => {
  const app = await build(t)
  for (const [method, url] of [
    ['GET', '/api/nothing-here'],
    ['POST', '/api/nothing-here'],
    // `/` is the demo app (test/web/pages.test.ts); a page that does not exist is not.
    ['GET', '/nothing-here.html'],
  ] as const) {
    const res = await app.app.inject({ method, url })
    t.equal(res.statusCode, 404, `${method} ${url}`)
    t.match(res.headers['content-type'], /application\/json/)
    t.match(res.json(), errorShape)
    t.equal(res.json().error.code, 'NOT_FOUND')
  }
})

t.test('a malformed JSON body is 400 in the error shape, never 500', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  const login = await app.app.inject({
    method: 'POST',
    url: '/api/auth/login',
    headers: { 'content-type': 'application/json' },
    payload: '{"username": "ada", "password": ',
  })
  t.equal(login.statusCode, 400)
  t.match(login.json(), errorShape)
  t.notMatch(login.body, /at .*\.(ts|js):\d+/, 'no stack trace')

  const create = await app.app.inject({
    method: 'POST',
    url: '/api/platforms',
    headers: { 'content-type': 'application/json', cookie: `sid=${ada.sid}`, 'x-csrf-token': ada.csrf!, 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0 Safari/537.36' },
    payload: '{"name": "x",,}',
  })
  t.equal(create.statusCode, 400, 'also behind a session')
  t.match(create.json(), errorShape)
})

t.test('a body over the size limit is 413 in the error shape', async (t) => {
  const app = await build(t)
  const res = await app.app.inject({
    method: 'POST',
    url: '/api/auth/login',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify({ username: 'ada', password: 'x'.repeat(200 * 1024) }),
  })
  t.equal(res.statusCode, 413)
  t.match(res.json(), errorShape)
})

t.test('a state-changing request from a foreign Origin is refused; allowed and same origins pass', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const login = (headers: Record<string, string>) =>
    app.app.inject({ method: 'POST', url: '/api/auth/login', headers, payload: { username: 'ada', password: PASSWORD } })

  const foreign = await login({ origin: 'https://evil.example' })
  t.equal(foreign.statusCode, 403)
  t.equal(foreign.json().error.code, 'ORIGIN_NOT_ALLOWED')
  t.notOk(foreign.cookies.some((c) => c.name === 'sid'), 'no session was opened')

  const lookalike = await login({ origin: 'http://localhost:3000.evil.example' })
  t.equal(lookalike.statusCode, 403, 'a prefix of an allowed origin is not allowed')

  const allowed = await login({ origin: 'http://localhost:3000' })
  t.equal(allowed.statusCode, 200, 'PUBLIC_URL’s origin is allowed')

  const sameOrigin = await login({ host: 'tessera.internal:8080', origin: 'http://tessera.internal:8080' })
  t.equal(sameOrigin.statusCode, 200, 'the origin of the Host header is allowed')

  const noOrigin = await login({})
  t.equal(noOrigin.statusCode, 200, 'a request without Origin (not from a browser page) passes')

  const read = await app.app.inject({ method: 'GET', url: '/healthz', headers: { origin: 'https://evil.example' } })
  t.equal(read.statusCode, 200, 'reads are not state-changing')

  const [row] = await app.ctx.database.sql`select count(*)::int as n from sessions`
  t.equal(row!.n, 3, 'only the three allowed sign-ins opened sessions')
})

t.test('ALLOWED_ORIGINS adds origins to the allow-list', async (t) => {
  const app = await build(t, { ALLOWED_ORIGINS: 'https://app.example.com' })
  await app.user('ada')
  const res = await app.app.inject({
    method: 'POST',
    url: '/api/auth/login',
    headers: { origin: 'https://app.example.com' },
    payload: { username: 'ada', password: PASSWORD },
  })
  t.equal(res.statusCode, 200)
  const other = await app.app.inject({
    method: 'POST',
    url: '/api/auth/login',
    headers: { origin: 'https://other.example.com' },
    payload: { username: 'ada', password: PASSWORD },
  })
  t.equal(other.statusCode, 403)
})

t.test('application/json with an empty body is no body, not a 400', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  const other = await app.client().signIn('ada')
  const headers = (c: typeof ada) => ({
    'content-type': 'application/json',
    cookie: `sid=${c.sid}`,
    'x-csrf-token': c.csrf!,
    'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0 Safari/537.36',
  })
  // What fetch('/api/auth/logout', { method: 'POST', headers: { 'content-type': 'application/json' } }) sends.
  const validate = await app.app.inject({ method: 'POST', url: '/api/session/validate', headers: headers(other), payload: '' })
  t.equal(validate.statusCode, 200)
  const logout = await app.app.inject({ method: 'POST', url: '/api/auth/logout', headers: headers(ada), payload: '' })
  t.equal(logout.statusCode, 204)
  const logoutAll = await app.app.inject({ method: 'POST', url: '/api/auth/logout-all', headers: headers(other), payload: '  ' })
  t.equal(logoutAll.statusCode, 200)
  const login = await app.app.inject({ method: 'POST', url: '/api/auth/login', headers: { 'content-type': 'application/json' }, payload: '' })
  t.equal(login.statusCode, 400, 'a route that needs a body still says which field is missing')
  t.match(login.json(), { error: { code: 'VALIDATION_FAILED', message: /body\.username is required/ } })
  const poisoned = await app.app.inject({
    method: 'POST',
    url: '/api/auth/login',
    headers: { 'content-type': 'application/json' },
    payload: '{"__proto__":{"x":1},"username":"a","password":"b"}',
  })
  t.equal(poisoned.statusCode, 400, 'prototype poisoning is still refused')
  t.match(poisoned.json(), errorShape)
})

t.test('/metrics shows PostgreSQL pool usage: open and busy connections', async (t) => {
  const app = await build(t, { DATABASE_POOL_MAX: '4' })
  const scrape = async () => {
    const text = (await app.app.inject({ method: 'GET', url: '/metrics' })).body
    const value = (state: string) => Number(new RegExp(`^tessera_db_pool_connections\\{state="${state}"\\} (\\d+)$`, 'm').exec(text)?.[1])
    return { text, open: value('open'), busy: value('busy') }
  }
  const idle = await scrape()
  t.match(idle.text, /^tessera_db_pool_max 4$/m)
  t.ok(idle.open >= 1 && idle.open <= 4, `open ${idle.open}`)
  t.equal(idle.busy, 0, 'nothing running')

  // Two transactions held open: two connections busy (idle in transaction counts).
  let release!: () => void
  const gate = new Promise<void>((resolve) => (release = resolve))
  let started = 0
  const held = [1, 2].map(() =>
    app.ctx.database.sql.begin(async (tx) => {
      await tx`select 1`
      started++
      await gate
    }),
  )
  while (started < 2) await new Promise((r) => setTimeout(r, 10))
  const busy = await scrape()
  t.equal(busy.busy, 2, 'the two held transactions')
  t.ok(busy.open >= 3, `open ${busy.open}: the held two and the one asking`)
  release()
  await Promise.all(held)
  t.equal((await scrape()).busy, 0, 'free again')
})
