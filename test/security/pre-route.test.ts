// Errors raised before a route runs (http.md, Conventions) answer in the contract's error
// shape with the same security headers as any other answer: an undecodable URL escape, an
// over-long path parameter, oversized headers or cookies, a malformed request line, a bad
// WebSocket handshake and a plain GET /ws. Before, these came back in Fastify's, Node's or
// ws' own shapes (or with an empty body) and without the headers. Also: answers that carry
// a token or session state are `Cache-Control: no-store`, and a request whose body stops
// arriving is answered 408 instead of waiting for good.
import { connect as tcp } from 'node:net'
import t from 'tap'
import { ARRIVAL_LIMITS } from '../../src/infra/pre-route.js'
import { build, signedIn } from '../helpers/app.js'
import { listen } from '../helpers/ws.js'

interface RawAnswer {
  status: number
  headers: Record<string, string>
  body: string
}

function parseAnswer(text: string): RawAnswer {
  const [head = '', ...rest] = text.split('\r\n\r\n')
  const [statusLine = '', ...lines] = head.split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const i = line.indexOf(':')
    headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim()
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body: rest.join('\r\n\r\n') }
}

/**
 * Sends bytes as they are on a fresh connection (several parts `gapMs` apart) and reads the
 * answer until the server closes it. Keep-alive answers do not close, so the client
 * half-closes after `halfCloseMs` unless that is null (to see the server close by itself).
 */
function raw(address: string, request: string | string[], { gapMs = 0, halfCloseMs = 1500 as number | null } = {}): Promise<RawAnswer> {
  const [host, port] = address.split(':')
  return new Promise((resolve, reject) => {
    const socket = tcp({ host, port: Number(port) })
    const chunks: Buffer[] = []
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('error', reject)
    socket.on('close', () => resolve(parseAnswer(Buffer.concat(chunks).toString())))
    for (const [i, part] of [request].flat().entries()) setTimeout(() => socket.write(part), i * gapMs)
    if (halfCloseMs !== null) setTimeout(() => socket.end(), halfCloseMs).unref()
  })
}

const SECURITY = ['content-security-policy', 'x-content-type-options', 'x-frame-options', 'referrer-policy', 'cross-origin-opener-policy', 'cross-origin-resource-policy']

t.test('every pre-route refusal has the error shape, x-request-id and the same security headers as any answer', async (t) => {
  const app = await build(t)
  const [ada] = await signedIn(app, 'ada')
  const address = await listen(app)
  const normal = await app.app.inject({ method: 'GET', url: '/healthz' })
  for (const name of SECURITY) t.ok(normal.headers[name], `a normal answer has ${name}`)

  const check = (what: string, answer: { status: number; headers: Record<string, unknown>; body: string }, status: number, code: string) => {
    t.equal(answer.status, status, `${what}: status`)
    let body: { error?: { code?: string; message?: string } } = {}
    try {
      body = JSON.parse(answer.body)
    } catch {
      t.fail(`${what}: the body is JSON (got ${JSON.stringify(answer.body.slice(0, 200))})`)
    }
    t.equal(body.error?.code, code, `${what}: code`)
    t.type(body.error?.message, 'string', `${what}: message`)
    t.match(String(answer.headers['content-type']), /application\/json/, `${what}: JSON`)
    t.ok(answer.headers['x-request-id'], `${what}: x-request-id`)
    for (const name of SECURITY) t.equal(answer.headers[name], normal.headers[name], `${what}: ${name}`)
  }
  const injected = async (url: string, headers: Record<string, string> = {}, method: 'GET' | 'DELETE' = 'GET') => {
    const res = await app.app.inject({ method, url, headers })
    return { status: res.statusCode, headers: res.headers as Record<string, unknown>, body: res.body }
  }

  check('an undecodable escape', await injected('/admin/users/%'), 400, 'BAD_REQUEST')
  check('a lone escape of a surrogate', await injected('/api/locks/%ED%A0%80', {}, 'DELETE'), 400, 'BAD_REQUEST')
  check('a path parameter over the router limit', await injected(`/api/locks/${'a'.repeat(401)}`, {}, 'DELETE'), 400, 'VALIDATION_FAILED')
  check('a plain GET /ws', await injected('/ws', { cookie: `sid=${ada!.sid}` }), 426, 'UPGRADE_REQUIRED')

  const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: ${address}\r\nConnection: close\r\n${extra}\r\n`
  check('a cookie past the header size limit', await raw(address, get('/healthz', `Cookie: sid=${'x'.repeat(20_000)}\r\n`)), 431, 'HEADERS_TOO_LARGE')
  check('headers past the size limit', await raw(address, get('/healthz', `X-Padding: ${'y'.repeat(20_000)}\r\n`)), 431, 'HEADERS_TOO_LARGE')
  check('a malformed request line', await raw(address, 'GET /healthz HTTP/9.9 extra\r\n\r\n'), 400, 'BAD_REQUEST')
  check('garbage instead of a request', await raw(address, '\u0001\u0002 nonsense\r\n\r\n'), 400, 'BAD_REQUEST')
  check('a header without a colon', await raw(address, `GET /healthz HTTP/1.1\r\nHost: x\r\nbroken header\r\n\r\n`), 400, 'BAD_REQUEST')

  const upgrade = (headers: Record<string, string>) =>
    get(
      '/ws',
      Object.entries({ Upgrade: 'websocket', Origin: 'http://localhost:3000', Cookie: `sid=${ada!.sid}`, ...headers })
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join(''),
    ).replace('Connection: close', 'Connection: Upgrade')
  const goodKey = 'dGhlIHNhbXBsZSBub25jZQ=='
  check('a handshake with a bad key', await raw(address, upgrade({ 'Sec-WebSocket-Key': 'not-a-key', 'Sec-WebSocket-Version': '13' })), 400, 'BAD_REQUEST')
  check('a handshake without a key', await raw(address, upgrade({ 'Sec-WebSocket-Version': '13' })), 400, 'BAD_REQUEST')
  check('a handshake with a bad version', await raw(address, upgrade({ 'Sec-WebSocket-Key': goodKey, 'Sec-WebSocket-Version': '99' })), 400, 'BAD_REQUEST')
  check('a handshake with a bad subprotocol list', await raw(address, upgrade({ 'Sec-WebSocket-Key': goodKey, 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Protocol': 'a,,b' })), 400, 'BAD_REQUEST')
  // The same handshake with a good key and version is upgraded (the checks are not too strict).
  const ok = await raw(address, upgrade({ 'Sec-WebSocket-Key': goodKey, 'Sec-WebSocket-Version': '13' }))
  t.equal(ok.status, 101, 'a well-formed handshake is upgraded')
  t.equal((await app.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200, 'the server still answers')
})

t.test('answers that carry a token or session state are Cache-Control: no-store', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const ada = app.client()
  const login = await ada.login('ada')
  t.equal(login.statusCode, 200)
  t.equal(login.headers['cache-control'], 'no-store', 'login')
  const failed = await app.client().login('ada', 'wrong-password-1')
  t.equal(failed.headers['cache-control'], 'no-store', 'a refused login too')
  for (const [method, url] of [
    ['GET', '/api/auth/csrf'],
    ['GET', '/api/session_state'],
    ['POST', '/api/session/validate'],
    ['POST', '/api/realtime/ticket'],
    ['GET', '/api/sessions'],
    ['GET', '/api/platforms'],
  ] as const) {
    const res = await ada.request(method, url)
    t.equal(res.statusCode, 200, `${method} ${url}`)
    t.equal(res.headers['cache-control'], 'no-store', `${method} ${url}`)
  }
  const health = await app.app.inject({ method: 'GET', url: '/healthz' })
  t.not(health.headers['cache-control'], 'no-store', 'other answers keep their caching')
  const missing = await app.app.inject({ method: 'GET', url: '/no/such/route' })
  t.equal(missing.statusCode, 404, 'an unknown route still answers 404')
})

t.test('a refusal before routing, to a page of an allowed origin, carries the CORS headers that let the page read it', async (t) => {
  const app = await build(t)
  const origin = new URL(app.ctx.config.publicUrl).origin
  for (const url of ['/admin/users/%', `/api/sessions/${'a'.repeat(500)}`]) {
    const res = await app.app.inject({ method: 'DELETE', url, headers: { origin } })
    t.equal(res.statusCode, 400, `${url.slice(0, 20)}: refused before routing`)
    t.equal(res.headers['access-control-allow-origin'], origin, `${url.slice(0, 20)}: the origin is allowed to read it`)
    t.equal(res.headers['access-control-allow-credentials'], 'true')
    t.match(res.headers.vary, /Origin/)
  }
  const foreign = await app.app.inject({ method: 'GET', url: '/admin/users/%', headers: { origin: 'https://evil.example' } })
  t.equal(foreign.statusCode, 400)
  t.notOk(foreign.headers['access-control-allow-origin'], 'a foreign origin gets no CORS headers')
})

t.test('a body that stops arriving is answered 408 REQUEST_TIMEOUT and the connection closed; a slow body that keeps coming is not', async (t) => {
  const before = ARRIVAL_LIMITS.bodySilenceMs
  ARRIVAL_LIMITS.bodySilenceMs = 500
  t.teardown(() => {
    ARRIVAL_LIMITS.bodySilenceMs = before
  })
  const app = await build(t)
  await app.user('ada')
  const address = await listen(app)
  const head = (extra: string) => `POST /api/auth/login HTTP/1.1\r\nHost: ${address}\r\nContent-Type: application/json\r\n${extra}\r\n`
  const short = await raw(address, `${head('Content-Length: 100\r\n')}{"username":`, { halfCloseMs: null })
  t.equal(short.status, 408, 'fewer bytes than Content-Length: 408')
  t.equal(JSON.parse(short.body).error.code, 'REQUEST_TIMEOUT')
  t.equal(short.headers.connection, 'close')
  const chunked = await raw(address, `${head('Transfer-Encoding: chunked\r\n')}5\r\n{"use\r\n`, { halfCloseMs: null })
  t.equal(chunked.status, 408, 'a chunked body that never ends: 408')

  // 8 pieces, 200 ms apart: 1.4 s in all, longer than the silence allowed, never silent that long.
  const body = JSON.stringify({ username: 'ada', password: 'not-her-password' })
  const pieces = Array.from({ length: 8 }, (_, i) => body.slice((i * body.length) / 8, ((i + 1) * body.length) / 8))
  const slow = await raw(address, [head(`Content-Length: ${body.length}\r\nConnection: close\r\n`), ...pieces], { gapMs: 200, halfCloseMs: null })
  t.equal(slow.status, 401, 'the slow body was read whole and answered (a wrong password)')
  t.equal((await app.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200, 'the server still answers')
})
