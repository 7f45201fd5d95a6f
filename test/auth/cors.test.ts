// CORS (config.md, ALLOWED_ORIGINS): pages of allowed origins may call the API with the
// session cookie and read the answers; pages of any other origin get no CORS headers.
import t from 'tap'
import { build } from '../helpers/app.js'

const APP = 'https://app.example.com'
const EVIL = 'https://evil.example'

const preflight = (origin: string, method = 'POST', headers = 'content-type,x-csrf-token,x-tab-id') => ({
  method: 'OPTIONS' as const,
  url: '/api/switch_platform/1',
  headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': headers },
})

t.test('a preflight from an allowed origin is answered with what the browser needs', async (t) => {
  const app = await build(t, { ALLOWED_ORIGINS: APP })
  for (const origin of [APP, 'http://localhost:3000']) {
    const res = await app.app.inject(preflight(origin, 'DELETE'))
    t.equal(res.statusCode, 204, origin)
    t.equal(res.headers['access-control-allow-origin'], origin, 'the origin is echoed, never *')
    t.equal(res.headers['access-control-allow-credentials'], 'true', 'the cookie may travel')
    t.match(res.headers['access-control-allow-methods'], /DELETE/)
    const allowed = String(res.headers['access-control-allow-headers']).toLowerCase()
    for (const header of ['content-type', 'x-csrf-token', 'x-tab-id']) t.match(allowed, header, `allows ${header}`)
    t.match(res.headers.vary, /Origin/, 'caches keep answers per origin apart')
    t.type(res.headers['x-request-id'], 'string')
  }
})

t.test('preflights are not refused for lacking a cookie or by the rate limits, and spend no budget', async (t) => {
  const app = await build(t, { ALLOWED_ORIGINS: APP, API_RATE_LIMIT: '2/min' })
  for (let i = 0; i < 5; i++) t.equal((await app.app.inject(preflight(APP))).statusCode, 204, `preflight ${i + 1}`)
  await app.user('ada')
  const ada = await app.client({ origin: APP }).signIn('ada')
  t.same([(await ada.get('/api/platforms')).statusCode, (await ada.get('/api/platforms')).statusCode], [200, 200], 'the budget is untouched')
  t.equal((await ada.get('/api/platforms')).statusCode, 429)
  t.equal((await app.app.inject(preflight(APP))).statusCode, 204, 'still answered once the budget is spent')
})

t.test('actual requests from an allowed origin carry the CORS headers, errors included', async (t) => {
  const app = await build(t, { ALLOWED_ORIGINS: APP, API_RATE_LIMIT: '3/min' })
  await app.user('ada')
  const ada = app.client({ origin: APP })
  const login = await ada.login('ada')
  t.equal(login.statusCode, 200)
  t.equal(login.headers['access-control-allow-origin'], APP)

  const state = await ada.get('/api/session_state')
  t.equal(state.statusCode, 200)
  t.equal(state.headers['access-control-allow-origin'], APP)
  t.equal(state.headers['access-control-allow-credentials'], 'true')
  const exposed = String(state.headers['access-control-expose-headers']).toLowerCase()
  t.match(exposed, 'x-request-id')
  t.match(exposed, 'retry-after')

  const refused = await app.client({ origin: APP }).get('/api/session_state')
  t.equal(refused.statusCode, 401)
  t.equal(refused.headers['access-control-allow-origin'], APP, 'the page can read why it was refused')

  await ada.get('/api/platforms')
  await ada.get('/api/platforms')
  const limited = await ada.get('/api/platforms')
  t.equal(limited.statusCode, 429)
  t.equal(limited.headers['access-control-allow-origin'], APP, 'and read Retry-After on a 429')
  t.ok(limited.headers['retry-after'])
})

t.test('a foreign origin gets no CORS headers at all', async (t) => {
  const app = await build(t, { ALLOWED_ORIGINS: APP })
  await app.user('ada')
  const pre = await app.app.inject(preflight(EVIL))
  t.equal(pre.statusCode, 404, 'answered as an unknown route')
  t.notOk(pre.headers['access-control-allow-origin'], 'preflight: no allow-origin')
  t.notOk(pre.headers['access-control-allow-credentials'])
  t.notOk(pre.headers['access-control-allow-methods'])

  const ada = await app.client().signIn('ada')
  const read = await ada.get('/api/session_state', { origin: EVIL })
  t.equal(read.statusCode, 200, 'the server answers a read; the browser keeps it from the page')
  t.notOk(read.headers['access-control-allow-origin'])
  t.notOk(read.headers['access-control-allow-credentials'])

  const lookalike = await ada.get('/api/session_state', { origin: `${APP}.evil.example` })
  t.notOk(lookalike.headers['access-control-allow-origin'], 'a prefix of an allowed origin is not allowed')
})

t.test('the server’s own origin (Host) is allowed; a request without Origin gets no CORS headers', async (t) => {
  const app = await build(t)
  const own = await app.app.inject({ ...preflight('http://tessera.internal:8080'), headers: { ...preflight('http://tessera.internal:8080').headers, host: 'tessera.internal:8080' } })
  t.equal(own.statusCode, 204)
  t.equal(own.headers['access-control-allow-origin'], 'http://tessera.internal:8080')

  const plain = await app.app.inject({ method: 'GET', url: '/healthz' })
  t.notOk(plain.headers['access-control-allow-origin'])
  t.notOk(plain.headers['access-control-allow-credentials'])
})
