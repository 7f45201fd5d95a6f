// Every route of the OpenAPI document, table-driven: without a session each answers 401
// UNAUTHENTICATED, and every state-changing one answers 403 CSRF_INVALID without its CSRF
// token or with a wrong one. Routes added later are covered without editing this file.
import t from 'tap'
import { build, type Client, type TestApp } from '../helpers/app.js'

/** Routes that need no session: operations, and signing in (which issues one). */
const PUBLIC = new Set(['GET /healthz', 'GET /readyz', 'GET /metrics', 'POST /api/auth/login', 'POST /api/auth/oidc'])
const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])
const SOME_UUID = '3b241101-e2bb-4255-8caf-4136c566a962'

interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'
  path: string
  url: string
}

/** The documented routes, with path parameters filled in by a plausible value. */
function routesOf(app: TestApp): Route[] {
  const doc = app.app.swagger() as { paths: Record<string, Record<string, unknown>> }
  return Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.keys(methods).map((m) => ({
      method: m.toUpperCase() as Route['method'],
      path,
      url: path.replace(/\{(\w+)\}/g, (_, name: string) => (name === 'id' && path.includes('/sessions/') ? SOME_UUID : name === 'resource' ? 'doc-1' : '1')),
    })),
  )
}

const label = (r: Route) => `${r.method} ${r.path}`
const send = (client: Client, r: Route, headers?: Record<string, string>) =>
  client.request(r.method, r.url, r.method === 'GET' || r.method === 'DELETE' ? undefined : {}, headers)

t.test('without a session every non-public route answers 401 UNAUTHENTICATED', async (t) => {
  const app = await build(t)
  const routes = routesOf(app).filter((r) => !PUBLIC.has(label(r)))
  const covered = new Set(routes.map(label))
  // The routes issue 2 names; the table must not pass by listing nothing.
  for (const name of [
    'POST /api/auth/logout',
    'POST /api/auth/logout-all',
    'GET /api/auth/csrf',
    'POST /api/auth/password',
    'POST /api/session/validate',
    'POST /api/session/cleanup',
    'GET /api/sessions',
    'DELETE /api/sessions/{id}',
    'GET /api/session_state',
    'GET /api/platforms',
    'POST /api/platforms',
    'DELETE /api/platforms/{platformId}',
    'POST /api/switch_platform/{platformId}',
    'POST /api/realtime/ticket',
    'POST /api/session/generate-uuid',
    'POST /api/session/validate-uuid',
  ]) {
    t.ok(covered.has(name), `${name} is in the table`)
  }
  for (const r of routes) {
    for (const cookie of [undefined, 'sid=not-a-session-token']) {
      const res = await send(app.client(), r, cookie ? { cookie } : {})
      t.equal(res.statusCode, 401, `${label(r)} ${cookie ? 'with an unknown token' : 'without a cookie'}`)
      t.equal(res.json().error.code, 'UNAUTHENTICATED', label(r))
    }
  }
})

t.test('every state-changing route answers 403 CSRF_INVALID without its token or with a wrong one', async (t) => {
  const app = await build(t)
  await app.user('root', { role: 'admin' })
  await app.user('bob')
  const root = await app.client().signIn('root')
  const bob = await app.client().signIn('bob')
  const routes = routesOf(app).filter((r) => STATE_CHANGING.has(r.method) && !PUBLIC.has(label(r)))
  const covered = new Set(routes.map(label))
  for (const name of [
    'POST /api/session/validate',
    'POST /api/session/generate-uuid',
    'POST /api/session/validate-uuid',
    'POST /api/locks',
    'DELETE /api/locks/{resource}',
    'POST /api/realtime/ticket',
    'POST /admin/users',
    'PATCH /admin/users/{id}',
    'POST /admin/users/{id}/unlock',
    'PUT /admin/sessions/config',
    'DELETE /admin/sessions/{id}',
    'POST /admin/alerts/{id}/ack',
  ]) {
    t.ok(covered.has(name), `${name} is in the table`)
  }
  for (const r of routes) {
    for (const [how, token] of [
      ['without the header', undefined],
      ['with an empty one', ''],
      ['with a wrong one', 'x'.repeat(43)],
      ["with another session's", bob.csrf!],
    ] as const) {
      const headers: Record<string, string> = {
        cookie: `sid=${root.sid}`,
        'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0 Safari/537.36',
        ...(token === undefined ? {} : { 'x-csrf-token': token }),
      }
      const res = await app.app.inject({ method: r.method, url: r.url, headers, ...(r.method === 'DELETE' ? {} : { payload: {} }) })
      t.equal(res.statusCode, 403, `${label(r)} ${how}`)
      t.equal(res.json().error.code, 'CSRF_INVALID', `${label(r)} ${how}`)
    }
  }
  t.equal((await root.get('/api/session_state')).statusCode, 200, 'none of them ended the session')
  t.equal((await bob.get('/api/session_state')).statusCode, 200)
})
