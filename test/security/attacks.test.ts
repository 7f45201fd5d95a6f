// Security targets tried as an attacker would (quality.md S1, S4, S5, S6, S9), where the
// other test files did not yet: S2 (CSRF) is in test/auth/route-guards.test.ts, S3
// (fixation) in test/auth/login.test.ts, S7 in the fuzzers beside this file, S8 (rate
// limits across two nodes) in test/auth/login.test.ts and test/auth/rate-limits.test.ts.
import t from 'tap'
import { ADMIN_PASSWORD, build, PASSWORD } from '../helpers/app.js'
import WebSocket from 'ws'
import { connect, listen, openTab } from '../helpers/ws.js'

const SECURITY = ['content-security-policy', 'x-content-type-options', 'x-frame-options', 'referrer-policy', 'cross-origin-opener-policy']

t.test('S1: a WebSocket upgrade from a foreign or null Origin is refused 403 in the error shape', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  const address = await listen(app)
  for (const origin of ['https://evil.example', 'null', 'http://localhost:3000.evil.example', 'https://localhost:3000', 'http://localhost:3001']) {
    const refused = await connect(address, { cookie: `sid=${ada.sid}`, origin }).catch((e: { status?: number; body?: string }) => e)
    t.equal((refused as { status?: number }).status, 403, `Origin ${origin}`)
    t.match(JSON.parse((refused as { body: string }).body), { error: { code: 'ORIGIN_NOT_ALLOWED' } }, `Origin ${origin}: the error shape`)
  }
  // Decision (docs/realtime.md): browsers always send Origin on a WebSocket handshake, so a
  // cross-site upgrade always carries a foreign one; an upgrade without Origin comes from a
  // program that holds the cookie itself, which no cross-site page can make. It is accepted.
  const bare = new WebSocket(`ws://${address}/ws`, { headers: { cookie: `sid=${ada.sid}`, 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0 Safari/537.36' } })
  const opened = await new Promise<boolean>((resolve) => {
    bare.once('open', () => resolve(true))
    bare.once('unexpected-response', () => resolve(false))
    bare.once('error', () => resolve(false))
  })
  t.ok(opened, 'an upgrade without Origin (not a browser) is accepted')
  bare.close()
})

t.test('S4: no raw session token or CSRF token is stored anywhere in PostgreSQL or Redis', async (t) => {
  const app = await build(t, { REALTIME_TICKET_SECONDS: '60' })
  await app.user('ada', { platforms: ['Home', 'Work'] })
  const ada = await app.client().signIn('ada')
  const other = await app.client().signIn('ada')
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  // Taken now: a logout clears the client's cookie.
  const signedIn = [ada.sid, ada.csrf, other.sid, other.csrf, admin.sid, admin.csrf]
  // Everything that writes: a tab, a switch, a lock, a ticket, an upload list, a logout, a termination.
  const { tab } = await openTab(await listen(app), ada.sid!, { tabId: 'one', view: '/x' })
  const [, work] = (await ada.get('/api/platforms')).json().items
  t.equal((await ada.post(`/api/switch_platform/${work.id}`)).statusCode, 200)
  t.equal((await ada.post('/api/locks', { resource: 'doc-1' })).statusCode, 201)
  const ticket = (await ada.post('/api/realtime/ticket')).json().ticket as string
  t.equal((await other.post('/api/auth/logout')).statusCode, 204)
  const third = await app.client().signIn('ada')
  const thirdSid = third.sid
  t.equal((await admin.delete(`/admin/sessions/${third.sessionId}`, { reason: 'test' })).statusCode, 200)
  await tab.close()

  const secrets = [...signedIn, thirdSid, third.csrf, ticket]
  t.ok(secrets.every((s) => typeof s === 'string' && s.length >= 20), 'every secret looked for is known')
  const sql = app.ctx.database.sql
  const tables = await sql`select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE'`
  t.ok(tables.length >= 10, `${tables.length} tables scanned`)
  for (const { table_name: name } of tables) {
    const rows = await sql.unsafe(`select t::text as whole from "${name}" t`)
    for (const row of rows) for (const secret of secrets as string[]) t.notOk(String(row.whole).includes(secret), `table ${name} holds no raw token`)
  }
  const redis = app.resources.redis
  const keys = await redis.keys(`${app.prefix}*`)
  t.ok(keys.length > 5, `${keys.length} Redis keys scanned`)
  for (const key of keys) {
    const type = await redis.type(key)
    const value =
      type === 'string' ? await redis.get(key)
      : type === 'hash' ? JSON.stringify(await redis.hgetall(key))
      : type === 'list' ? JSON.stringify(await redis.lrange(key, 0, -1))
      : type === 'set' ? JSON.stringify(await redis.smembers(key))
      : type === 'zset' ? JSON.stringify(await redis.zrange(key, '0', '-1'))
      : type === 'stream' ? JSON.stringify(await redis.xrange(key, '-', '+'))
      : ''
    for (const secret of secrets as string[]) {
      t.notOk(key.includes(secret) || String(value).includes(secret), `Redis ${type} ${key} holds no raw token`)
    }
  }
})

const percentile = (xs: number[], p: number) => {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

t.test('S5: an unknown user and a wrong password answer alike: same code, body and headers, overlapping time distributions', async (t) => {
  const app = await build(t, { LOGIN_RATE_LIMIT: '100000/min' })
  await app.user('ada')
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  // Lockout off, so that 200 wrong passwords keep answering 401 (the lockout has tests of its own).
  t.equal((await admin.put('/admin/sessions/config', { failedLogin: { lockoutEnabled: false } })).statusCode, 200)
  const times = { unknown: [] as number[], wrong: [] as number[] }
  const shapes = new Set<string>()
  const VOLATILE = new Set(['date', 'x-request-id', 'content-length', 'x-ratelimit-remaining', 'x-ratelimit-reset'])
  // In pairs sent together, so that the machine's load falls on both alike.
  for (let i = 0; i < 200; i++) {
    await Promise.all(
      (['unknown', 'wrong'] as const).map(async (which) => {
        const started = process.hrtime.bigint()
        const res = await app.client().login(which === 'unknown' ? `nobody-${i}` : 'ada', which === 'unknown' ? PASSWORD : `wrong-password-${i}`)
        times[which].push(Number(process.hrtime.bigint() - started) / 1e6)
        const headers = Object.entries(res.headers).filter(([k]) => !VOLATILE.has(k)).sort()
        shapes.add(JSON.stringify([res.statusCode, res.json(), headers]))
      }),
    )
  }
  t.equal(shapes.size, 1, 'every answer has the same status, body and headers')
  t.match(JSON.parse([...shapes][0]!)[1], { error: { code: 'INVALID_CREDENTIALS' } })
  // Similar time: medians and 90th percentiles within a factor of 1.5 of each other (an
  // unknown user checked without argon2 answers some 50 times faster).
  for (const p of [50, 90]) {
    const u = percentile(times.unknown, p)
    const w = percentile(times.wrong, p)
    t.ok(Math.max(u, w) / Math.min(u, w) < 1.5, `p${p}: unknown user ${u.toFixed(1)} ms, wrong password ${w.toFixed(1)} ms`)
  }
})

t.test('S6: every /admin route of the OpenAPI document and every admin message is refused to a non-admin', async (t) => {
  const app = await build(t)
  await app.user('rita', { role: 'reviewer' })
  await app.user('bob')
  const rita = await app.client().signIn('rita')
  const bob = await app.client().signIn('bob')
  const doc = (await app.app.inject({ method: 'GET', url: '/api/openapi.json' })).json() as { paths: Record<string, Record<string, unknown>> }
  const admin = Object.entries(doc.paths).filter(([path]) => path.startsWith('/admin'))
  t.ok(admin.length >= 10, `${admin.length} admin paths`)
  for (const [path, ops] of admin) {
    for (const method of Object.keys(ops)) {
      const url = path.replace('{id}', path.includes('sessions') ? bob.sessionId! : '1')
      const res = await rita.request(method.toUpperCase() as 'GET', url, method === 'get' ? undefined : {})
      t.equal(res.statusCode, 403, `${method.toUpperCase()} ${path} as a reviewer`)
      t.equal(res.json().error.code, 'FORBIDDEN', `${method.toUpperCase()} ${path} as a reviewer`)
    }
  }
  t.equal((await bob.get('/api/session_state')).statusCode, 200, "bob's session was not ended by any of them")
  // Another user's session by id: as if it did not exist.
  const revoke = await rita.delete(`/api/sessions/${bob.sessionId}`)
  t.equal(revoke.statusCode, 404)
  t.equal(revoke.json().error.code, 'SESSION_NOT_FOUND')

  const { tab } = await openTab(await listen(app), rita.sid!, { tabId: 'r' })
  tab.send({ type: 'admin.subscribe' })
  t.equal((await tab.type('error')).code, 'FORBIDDEN', 'admin.subscribe')
  tab.send({ type: 'admin.unsubscribe' })
  tab.send({ type: 'ping', id: 'after' })
  await tab.next((m) => m.type === 'pong' && m.id === 'after')
  t.notOk(tab.messages.some((m) => m.type === 'admin.snapshot' || m.type === 'admin.delta'), 'no admin feed frame reached the reviewer')
  await tab.close()
})

t.test('S9: security headers on every route of the OpenAPI document and a CSP on the pages', async (t) => {
  const app = await build(t)
  const doc = (await app.app.inject({ method: 'GET', url: '/api/openapi.json' })).json() as { paths: Record<string, Record<string, unknown>> }
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const method of Object.keys(ops)) {
      const res = await app.app.inject({ method: method.toUpperCase() as 'GET', url: path.replace(/\{\w+\}/g, '1') })
      for (const name of SECURITY) t.ok(res.headers[name], `${method.toUpperCase()} ${path} (${res.statusCode}): ${name}`)
    }
  }
  for (const page of ['/', '/admin', '/docs/', '/no-such-page']) {
    const res = await app.app.inject({ method: 'GET', url: page })
    t.match(res.headers['content-security-policy'], /default-src 'self'/, `${page}: a Content-Security-Policy`)
    t.match(res.headers['content-security-policy'], /frame-ancestors 'self'|frame-ancestors 'none'/, `${page}: no framing by other sites`)
  }
})
